//! Command-line interface: `run`, `find-max`, `validate`, `target`, `demo`. The flags of `run` are the
//! configuration's flag layer, defined once in [`crate::config::Overrides`]; this module adds
//! the subcommands, the positional FILE (or URL) and the help texts.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{
    CapacityFlags, DistFlags, Dur, ExportFlags, OutputFlags, Overrides, parse_duration,
};

/// An OpenTelemetry-native HTTP load tester.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the scenarios of a TOML/YAML file, or an ad-hoc test described by flags.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// Find the highest arrival rate that meets the SLO (the thresholds): constant-rate steps,
    /// ramped then bisected.
    #[command(after_help = FIND_MAX_EXAMPLES)]
    FindMax(Box<FindMaxArgs>),
    /// Check a config file and exit (0 if valid, 2 if not).
    Validate {
        /// The TOML or YAML file.
        file: PathBuf,
    },
    /// Serve the embedded HTTP target (for demos, tests and benchmarks).
    #[command(after_help = TARGET_ROUTES.as_str())]
    Target {
        /// Where to listen: PORT or :PORT (on 127.0.0.1), HOST:PORT (resolved) or IP:PORT.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080", value_parser = listen)]
        listen: SocketAddr,
        /// Serve at most this many requests per second (evenly spaced); beyond, a request
        /// waits for its turn up to --queue, else gets 503 at once [default: unlimited].
        #[arg(long, value_name = "REQ_PER_S", value_parser = capacity)]
        capacity: Option<f64>,
        /// The longest wait for a turn under --capacity (0: none, beyond capacity is 503).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = dur)]
        queue: Dur,
        /// From this long after the start, delay every response by --degrade-latency.
        #[arg(long, value_name = "DURATION", value_parser = dur)]
        degrade_after: Option<Dur>,
        /// How long the degradation lasts [default: for good].
        #[arg(long, value_name = "DURATION", value_parser = dur, requires = "degrade_after")]
        degrade_for: Option<Dur>,
        /// The delay added while degraded.
        #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = dur)]
        degrade_latency: Dur,
    },
    /// Start the embedded target on a free loopback port and run a ~10 s demo against it.
    Demo(Box<DemoArgs>),
    /// Make the HTML report of a summary JSON file (--summary-json of a run).
    Report {
        /// The summary JSON file.
        summary: PathBuf,
        /// Where to write the HTML file.
        #[arg(long, short = 'o', value_name = "PATH", default_value = "report.html")]
        output: PathBuf,
        /// A baseline summary: every tile and latency figure is shown beside the baseline's,
        /// and the verdict of `stampede compare BASELINE SUMMARY` beside the thresholds'.
        #[arg(long, value_name = "PATH")]
        baseline: Option<PathBuf>,
        /// With --baseline: tolerated worsening of req/s, error rate, p50, p95 and p99, in
        /// percent, as `stampede compare --max-regression`.
        #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = tolerance)]
        max_regression: f64,
    },
    /// Merge the summaries of a distributed run's segments (--segment-summary-json files)
    /// into the summary of the whole test: exact percentiles, thresholds on the merge; exit 3
    /// when a threshold is crossed, 4 when a segment is missing.
    Merge {
        /// The segments' summary JSON files.
        #[arg(required = true, value_name = "SUMMARY")]
        summaries: Vec<PathBuf>,
        /// Write the merged summary as JSON to this file.
        #[arg(long, value_name = "PATH")]
        summary_json: Option<PathBuf>,
        /// Threshold, e.g. 'p99 < 500ms', repeatable, judged on the merged result.
        #[arg(long = "threshold", value_name = "EXPR")]
        thresholds: Vec<String>,
    },
    /// Compare two summary JSON files; exit 3 when CURRENT regressed beyond the tolerance.
    Compare {
        /// The baseline summary (--summary-json of an earlier run).
        baseline: PathBuf,
        /// The summary to judge.
        current: PathBuf,
        /// Tolerated worsening of req/s, error rate, p50, p95 and p99, in percent.
        #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = tolerance)]
        max_regression: f64,
        /// Print a Markdown table.
        #[arg(long)]
        markdown: bool,
    },
}

/// `stampede run --help` ends with these.
const RUN_EXAMPLES: &str = "\
Examples:
  stampede run http://127.0.0.1:8080/                       10 VUs for 10 s (the ad-hoc default)
  stampede run -u http://127.0.0.1:8080/ -c 50 -d 30s       50 VUs for 30 s
  stampede run -u http://127.0.0.1:8080/ -n 1000            1000 requests shared by 10 VUs
  stampede run -u http://127.0.0.1:8080/ --rate 200 -d 1m   open model: 200 iterations/s for 1 min
  stampede run -u http://127.0.0.1:8080/ --stage 30s:50 --stage 1m:50 --stage 10s:0
                                                            ramp to 50 VUs, hold, ramp down
  stampede run -u http://127.0.0.1:8080/login -X POST --json '{\"user\":\"a\"}' -H 'X-Key: k'
  stampede run config/locust-admin.toml -u http://127.0.0.1:8080   a scenario file, retargeted
  stampede run config/quickstart.toml --threshold 'p95 < 200ms' --summary-json summary.json

Flags override the file; STAMPEDE_* environment variables sit between the file and the flags
(STAMPEDE_RUN__ID=nightly). Exit codes: 0 ok, 1 run failed, 2 usage or config error,
3 threshold crossed, 4 distributed run incomplete (a segment's summary is missing),
5 an exporter delivered less than everything (with --fail-on-export-error), 130 interrupted.";

/// `stampede find-max --help` ends with these.
const FIND_MAX_EXAMPLES: &str = "\
Examples:
  stampede find-max http://127.0.0.1:8080/ --threshold 'p99[5s] < 100ms'
  stampede find-max config/find-max.toml --summary-json capacity.json
  stampede find-max -u http://127.0.0.1:8080/ --threshold 'error_rate < 1%' \\
      --start-rate 50 --step-duration 30s --precision 5%

Each step runs the scenario at a constant rate for --step-duration, its window; a step passes
when every threshold holds, 98% of the rate was both sent (started, not dropped) and achieved
(completed) inside the window, and neither p99 nor requests in flight rose steadily across it. A first failure of the ramp is re-checked once. Exit codes: 0 a maximum
was found, 1 the generator could not keep up (no maximum claimed), 2 usage or config error,
3 no rate met the SLO, 130 interrupted.";

/// Flags of `stampede find-max`.
#[derive(Debug, Args)]
pub(crate) struct FindMaxArgs {
    /// Scenario file (TOML or YAML); its first scenario runs at each step's rate. A URL here is
    /// taken as --url.
    #[arg(value_name = "FILE|URL", value_parser = file_or_url)]
    pub file: Option<FileOrUrl>,
    /// The search.
    #[command(flatten)]
    pub search: CapacityFlags,
    /// The flag layer of the configuration (as for `run`).
    #[command(flatten)]
    pub flags: Overrides,
    /// Execution segments: the search over several generators (the rate is global).
    #[command(flatten)]
    pub dist: DistFlags,
}

impl FindMaxArgs {
    /// The scenario file (if any), the flag layer, the search flags and the segment flags.
    pub(crate) fn into_parts(self) -> (Option<PathBuf>, Overrides, CapacityFlags, DistFlags) {
        let (file, flags) = RunArgs {
            file: self.file,
            flags: self.flags,
            search: CapacityFlags::default(),
            dist: DistFlags::default(),
        }
        .into_parts();
        (file, flags, self.search, self.dist)
    }
}

fn capacity(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}`: requests per second, a number above 0")),
    }
}

/// `stampede target --help` ends with the routes.
static TARGET_ROUTES: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("Routes:\n{}", crate::target::ROUTES));

/// Flags of `stampede run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Scenario file (TOML or YAML). Without it, the flags describe an ad-hoc run. A URL here
    /// (http://…) is taken as --url, the way oha, hey and wrk take it.
    #[arg(value_name = "FILE|URL", value_parser = file_or_url)]
    pub file: Option<FileOrUrl>,
    /// The flag layer of the configuration.
    #[command(flatten)]
    pub flags: Overrides,
    /// The search flags, for a file whose scenario is a `capacity-search` (as `find-max`).
    #[command(flatten)]
    pub search: CapacityFlags,
    /// Distributed-run flags (segments, coordinator).
    #[command(flatten)]
    pub dist: DistFlags,
}

/// The positional argument of `stampede run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileOrUrl {
    /// A scenario file.
    File(PathBuf),
    /// A target URL, as with `--url`.
    Url(String),
}

impl RunArgs {
    /// The scenario file (if any) and the flag layer, a positional URL moved into `--url`.
    pub(crate) fn into_parts(self) -> (Option<PathBuf>, Overrides) {
        let mut flags = self.flags;
        match self.file {
            Some(FileOrUrl::File(p)) => (Some(p), flags),
            Some(FileOrUrl::Url(u)) => {
                flags.urls.insert(0, u);
                (None, flags)
            }
            None => (None, flags),
        }
    }
}

/// Flags of `stampede demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Demo length.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = dur)]
    pub duration: Dur,
    /// Output flags.
    #[command(flatten)]
    pub output: OutputFlags,
    /// Export flags.
    #[command(flatten)]
    pub export: ExportFlags,
}

fn tolerance(s: &str) -> Result<f64, String> {
    crate::report::ci::parse_tolerance(s)
}

fn dur(s: &str) -> Result<Dur, String> {
    parse_duration(s).map(Dur)
}

fn file_or_url(s: &str) -> Result<FileOrUrl, String> {
    if s.contains("://") {
        return crate::config::check_url(s).map(FileOrUrl::Url);
    }
    let path = PathBuf::from(s);
    // `127.0.0.1:8080/` or `localhost:8080`: a URL without its scheme, not a file name.
    let host_port = s.split(['/', '?']).next().and_then(|a| a.rsplit_once(':'));
    if !path.exists() && host_port.is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
        return Err(format!(
            "no such file, and as a URL the scheme is missing; did you mean http://{s}?"
        ));
    }
    Ok(FileOrUrl::File(path))
}

/// `8080`, `:8080`, `localhost:8080`, `0.0.0.0:8080`, `[::1]:8080`.
fn listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let hint = "write PORT, HOST:PORT or IP:PORT, e.g. 8080, localhost:8080 or 0.0.0.0:8080";
    if let Ok(port) = s.strip_prefix(':').unwrap_or(s).parse::<u16>() {
        return Ok((Ipv4Addr::LOCALHOST, port).into());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            let addrs: Vec<SocketAddr> = s
                .to_socket_addrs()
                .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| format!("`{host}` resolves to no address"))
        }
        Some((_, port)) if port.parse::<u16>().is_err() => {
            Err(format!("`{port}` is not a port (0-65535); {hint}"))
        }
        _ => Err(hint.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(std::iter::once("stampede").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Run(r) => *r,
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn parses_an_ad_hoc_run() {
        let (file, o) = run_args(&[
            "run",
            "--url",
            "http://127.0.0.1:1/",
            "-H",
            "X-Api-Key: abc",
            "--vus",
            "5",
            "--duration",
            "1m30s",
            "--threshold",
            "p99 < 500ms",
            "--remote-write-url",
            "http://127.0.0.1:9090/api/v1/write",
        ])
        .into_parts();
        assert_eq!(file, None);
        assert_eq!(o.headers, vec![("X-Api-Key".into(), "abc".into())]);
        assert_eq!(o.duration, Some(Dur::secs(90)));
        assert_eq!(o.vus, Some(5));
        let (_, o2) = run_args(&[
            "run",
            "-u",
            "http://h/",
            "--stage",
            "10s:3",
            "--stage",
            "5s:0",
        ])
        .into_parts();
        assert_eq!(o2.stages.len(), 2);
        assert_eq!(o.export.remote_write_urls.len(), 1);
    }

    #[test]
    fn a_url_where_the_file_goes_is_taken_as_url() {
        let (file, o) =
            run_args(&["run", "http://127.0.0.1:1/", "-u", "http://127.0.0.1:2/"]).into_parts();
        assert_eq!(file, None);
        assert_eq!(o.urls, ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]);
        let (file, _) = run_args(&["run", "scenario.toml"]).into_parts();
        assert_eq!(file, Some(PathBuf::from("scenario.toml")));
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            &["stampede", "run", "--duration", "soon"][..],
            &["stampede", "run", "-H", "no-colon"],
            &["stampede", "run", "--json", "{nope"],
            &["stampede", "run", "--otlp-protocol", "smtp"],
            &["stampede", "run", "--vus", "-3"],
            &["stampede", "run", "--url", "127.0.0.1:8080/"],
            &["stampede", "run", "127.0.0.1:8080/"],
            &["stampede", "run", "--stage", "30s"],
            &["stampede", "run", "--stage", "30s:5", "-d", "1s"],
            &["stampede", "run", "--stage", "30s:5", "-n", "10"],
            &["stampede", "target", "--listen", "nowhere"],
        ] {
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn listen_takes_a_port_a_host_or_an_address() {
        assert_eq!(listen("8081"), Ok(SocketAddr::from(([127, 0, 0, 1], 8081))));
        assert_eq!(
            listen(":8081"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 8081)))
        );
        assert_eq!(
            listen("0.0.0.0:80"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 80)))
        );
        assert_eq!(listen("[::1]:80").map(|a| a.is_ipv6()), Ok(true));
        assert!(listen("localhost:8082").is_ok_and(|a| a.port() == 8082 && a.ip().is_loopback()));
        assert!(listen("localhost").unwrap_err().contains("HOST:PORT"));
        assert!(listen("localhost:http").unwrap_err().contains("not a port"));
        assert!(
            listen("no-such-host.invalid:1")
                .unwrap_err()
                .contains("cannot resolve")
        );
    }

    #[test]
    fn help_defaults_agree_with_the_code() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run.render_long_help().to_string();
        let cfg = crate::config::Config::default();
        for (flag, default) in [
            ("--vus", crate::config::AD_HOC_VUS.to_string()),
            ("--duration", crate::config::AD_HOC_DURATION.to_string()),
            ("--timeout", cfg.defaults.timeout.to_string()),
            ("--graceful-stop", cfg.run.graceful_stop.to_string()),
            ("--busy-poll", cfg.run.busy_poll.to_string()),
        ] {
            let at = help.find(&format!("{flag} <")).expect(flag);
            let text = &help[at..];
            let text = &text[..text.find("\n  -").unwrap_or(text.len())];
            assert!(
                text.contains(&format!("[default: {default}")),
                "{flag} does not say [default: {default}]: {text}"
            );
        }
    }
}

#[cfg(test)]
mod remote_write_flag_tests {
    use super::*;

    #[test]
    fn remote_write_flags_reach_every_target() {
        let cli = Cli::try_parse_from([
            "stampede",
            "run",
            "--url",
            "http://127.0.0.1:1/",
            "--remote-write-url",
            "http://127.0.0.1:9090/api/v1/write",
            "--remote-write-url",
            "https://127.0.0.1:9091/api/v1/write",
            "--remote-write-interval",
            "1s",
            "--remote-write-header",
            "X-Scope-OrgID: team-a",
            "--remote-write-bearer-token-env",
            "PROM_TOKEN",
            "--remote-write-insecure",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        let (_, ov) = r.into_parts();
        assert!(!ov.insecure, "--remote-write-insecure is not --insecure");
        let cfg = crate::config::load(None, &ov).unwrap();
        assert!(!cfg.defaults.insecure);
        assert_eq!(cfg.metrics.remote_write.len(), 2);
        for rw in &cfg.metrics.remote_write {
            assert_eq!(rw.push_interval.get(), std::time::Duration::from_secs(1));
            assert_eq!(
                rw.headers.get("X-Scope-OrgID").map(String::as_str),
                Some("team-a")
            );
            assert_eq!(rw.bearer_token_env.as_deref(), Some("PROM_TOKEN"));
            assert!(rw.tls.insecure_skip_verify);
        }
    }

    #[test]
    fn a_too_short_push_interval_is_a_config_error() {
        let ov = crate::config::Overrides {
            urls: vec!["http://127.0.0.1:1/".into()],
            export: crate::config::ExportFlags {
                remote_write_urls: vec!["http://127.0.0.1:9090/api/v1/write".into()],
                remote_write: crate::config::RemoteWriteFlags {
                    interval: Some(Dur::millis(100)),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let e = crate::config::load(None, &ov).unwrap_err().to_string();
        assert!(e.contains("push_interval"), "{e}");
    }
}
