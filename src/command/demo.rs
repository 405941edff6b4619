//! `stampede demo`: the embedded target on a free loopback port, and a built-in scenario shaped
//! like the Locust test stampede was born from (login on start, two weighted tasks), plus a
//! trickle of failures so the summary has something to show.

use crate::command::cli::DemoArgs;
use crate::command::shared::{Error, Presentation};
use crate::config::{Overrides, load_str};
use crate::report::summary::Summary;

/// The built-in demo scenario; `{base}` is replaced by the target's URL.
pub(crate) const DEMO_TOML: &str = r#"
thresholds = ["p95 < 500ms", "error_rate < 5%"]

[[scenarios]]
name = "admin"
executor = "ramping-vus"
stages = [
  { duration = "3s", target = 20 },
  { duration = "5s", target = 20 },
  { duration = "2s", target = 0 },
]
think_time = { min = "5ms", max = "20ms" }
base_url = "{base}"

[[scenarios.on_start]]
name = "/user/login"
method = "POST"
url = "/user/login"
json = { username = "admin", password = "admin" }
extract = { token = { json = "/token" } }
checks = { status = 200 }

[[scenarios.tasks]]
weight = 50
requests = [{ url = "/newsql/api/getTablesByAppId", query = { appId = "1" }, headers = { Authorization = "Bearer ${token}" }, checks = { status = 200, body_contains = "t_user" } }]

[[scenarios.tasks]]
weight = 50
requests = [{ url = "/user/api/getApps", headers = { Authorization = "Bearer ${token}" }, checks = { status = 200 } }]

[[scenarios.tasks]]
weight = 2
requests = [{ name = "/status/{code}", url = "/status/503" }]
"#;

/// Runs the demo.
pub(crate) fn run(args: &DemoArgs) -> Result<Summary, Error> {
    let target = crate::target::spawn_background(([127, 0, 0, 1], 0).into())
        .map_err(|e| anyhow::anyhow!("cannot start the embedded target: {e}"))?;
    let base = format!("http://{}", target.addr);
    eprintln!("embedded target listening on {base}");
    let total = args.duration.get().as_secs_f64().max(1.0);
    let text = DEMO_TOML
        .replace("{base}", &base)
        .replace("\"3s\"", &format!("\"{}ms\"", (total * 300.0) as u64))
        .replace("\"5s\"", &format!("\"{}ms\"", (total * 500.0) as u64))
        .replace("\"2s\"", &format!("\"{}ms\"", (total * 200.0) as u64));
    let ov = Overrides {
        output: args.output.clone(),
        export: args.export.clone(),
        ..Default::default()
    };
    let cfg = load_str(DEMO_NAME, &text, &ov)?;
    crate::command::shared::run_one(
        cfg,
        DEMO_NAME,
        Presentation {
            print: true,
            progress: true,
        },
    )
}

/// How the demo scenario is named in messages.
const DEMO_NAME: &str = "demo.toml";
