//! Loading: figment layers defaults < file < `STAMPEDE_*` env < flags, then flag overrides that
//! apply to every scenario (VUs, rate, duration, iterations).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml, Yaml};

use super::{Config, Dur};

/// A configuration problem. Every message names the file, key or flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file name has no extension we know.
    #[error("config file {0}: unknown format (use .toml, .yaml or .yml)")]
    Format(PathBuf),
    /// Syntax error, unknown key, wrong type: figment's message names the key and the source.
    #[error("{0}")]
    Figment(String),
    /// A value that parses but makes no sense.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// Where the config came from (file name, or "command line").
        origin: String,
        /// The key, e.g. `scenarios[0].vus`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        origin: &str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Values from command-line flags that override the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--url`: ad-hoc targets, or with a file the base URL.
    pub urls: Vec<String>,
    /// `--method` (ad hoc only).
    pub method: Option<String>,
    /// `--header 'K: V'`.
    pub headers: Vec<(String, String)>,
    /// `--body`.
    pub body: Option<String>,
    /// `--json`.
    pub json: Option<serde_json::Value>,
    /// `--vus`.
    pub vus: Option<u64>,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--duration`.
    pub duration: Option<Dur>,
    /// `--iterations`.
    pub iterations: Option<u64>,
    /// `--timeout`.
    pub timeout: Option<Dur>,
    /// `--run-id`.
    pub run_id: Option<String>,
    /// `--threshold`.
    pub thresholds: Vec<String>,
    /// `--summary-json`.
    pub summary_json: Option<PathBuf>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--status-interval`.
    pub status_interval: Option<Dur>,
    /// `--timeline-interval`.
    pub timeline_interval: Option<Dur>,
    /// `--http2`.
    pub http2: bool,
    /// `--insecure`.
    pub insecure: bool,
    /// `--no-metrics`.
    pub no_metrics: bool,
    /// `--histogram`.
    pub histogram: Option<super::HistogramKind>,
    /// `--metrics-interval`.
    pub metrics_interval: Option<Dur>,
    /// `--remote-write-url`.
    pub remote_write_urls: Vec<String>,
    /// `--remote-write-*` settings, applied to every remote-write target.
    pub remote_write: RemoteWriteFlags,
    /// `--otlp-endpoint`.
    pub otlp_endpoint: Option<String>,
    /// `--otlp-protocol`.
    pub otlp_protocol: Option<super::OtlpProtocol>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--graceful-stop`.
    pub graceful_stop: Option<Dur>,
}

/// `--remote-write-*` flags (credentials only by reference: a file or an environment variable).
#[derive(Clone, Debug, Default)]
pub struct RemoteWriteFlags {
    /// `--remote-write-interval`.
    pub interval: Option<Dur>,
    /// `--remote-write-header`.
    pub headers: Vec<(String, String)>,
    /// `--remote-write-bearer-token-file`.
    pub bearer_token_file: Option<PathBuf>,
    /// `--remote-write-bearer-token-env`.
    pub bearer_token_env: Option<String>,
    /// `--remote-write-user`.
    pub user: Option<String>,
    /// `--remote-write-password-env`.
    pub password_env: Option<String>,
    /// `--remote-write-password-file`.
    pub password_file: Option<PathBuf>,
    /// `--remote-write-ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--remote-write-insecure`.
    pub insecure: bool,
}

impl RemoteWriteFlags {
    fn apply(&self, rw: &mut crate::export::RemoteWriteConfig) {
        if let Some(i) = self.interval {
            rw.push_interval = i.get();
        }
        for (k, v) in &self.headers {
            rw.headers.insert(k.clone(), v.clone());
        }
        if self.bearer_token_file.is_some() || self.bearer_token_env.is_some() {
            rw.bearer_token = None;
            rw.bearer_token_file = self.bearer_token_file.clone();
            rw.bearer_token_env = self.bearer_token_env.clone();
        }
        if let Some(u) = &self.user {
            rw.basic_auth = Some(crate::export::remote_write::BasicAuth {
                username: u.clone(),
                password: None,
                password_file: self.password_file.clone(),
                password_env: self.password_env.clone(),
            });
        }
        if let Some(ca) = &self.ca_file {
            rw.tls.ca_file = Some(ca.clone());
        }
        if self.insecure {
            rw.tls.insecure_skip_verify = true;
        }
    }
}

/// The environment layer's prefix.
pub(crate) const ENV_PREFIX: &str = "STAMPEDE_";

/// Loads and merges the configuration, then validates it.
pub fn load(file: Option<&Path>, ov: &Overrides) -> Result<Config, ConfigError> {
    load_with_env_prefix(file, ov, ENV_PREFIX)
}

fn load_with_env_prefix(
    file: Option<&Path>,
    ov: &Overrides,
    env_prefix: &str,
) -> Result<Config, ConfigError> {
    let origin = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "command line".to_string());
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        // Read it ourselves so a missing file is reported as such (figment would skip it).
        std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        fig = match ext.as_deref() {
            Some("toml") => fig.merge(Toml::file_exact(path)),
            Some("yaml" | "yml") => fig.merge(Yaml::file_exact(path)),
            _ => return Err(ConfigError::Format(path.to_path_buf())),
        };
    }
    // Only nested keys (`STAMPEDE_RUN__ID`): every top-level key is a table, and variables
    // such as `STAMPEDE_LOG` (log filter) are not configuration.
    fig = fig.merge(
        Env::prefixed(env_prefix)
            .split("__")
            .ignore(&["config"])
            .filter(|k| k.as_str().contains('.')),
    );
    fig = merge_flags(fig, ov);
    let mut cfg: Config = fig
        .extract()
        .map_err(|e| ConfigError::Figment(figment_message(e)))?;
    apply_scenario_overrides(&mut cfg, file.is_some(), ov, &origin)?;
    super::validate(&cfg, &origin)?;
    Ok(cfg)
}

/// Figment errors can carry several; print each on its own line, naming key and source.
fn figment_message(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let mut s = e.to_string();
            // Figment says "for key default.scenarios" for the whole config; drop the profile.
            s = s.replace("key \"default.", "key \"");
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn merge_flags(mut fig: Figment, ov: &Overrides) -> Figment {
    if let Some(id) = &ov.run_id {
        fig = fig.merge(("run.id", id));
    }
    if let Some(p) = &ov.summary_json {
        fig = fig.merge(("run.summary_json", p));
    }
    if ov.quiet {
        fig = fig.merge(("run.quiet", true));
    }
    if let Some(d) = ov.status_interval {
        fig = fig.merge(("run.status_interval", d));
    }
    if let Some(d) = ov.timeline_interval {
        fig = fig.merge(("run.timeline_interval", d));
    }
    if let Some(w) = ov.workers {
        fig = fig.merge(("run.workers", w));
    }
    if let Some(g) = ov.graceful_stop {
        fig = fig.merge(("run.graceful_stop", g));
    }
    if let Some(t) = ov.timeout {
        fig = fig.merge(("defaults.timeout", t));
    }
    if ov.http2 {
        fig = fig.merge(("defaults.http2", true));
    }
    if ov.insecure {
        fig = fig.merge(("defaults.insecure", true));
    }
    if ov.no_metrics {
        fig = fig.merge(("metrics.enabled", false));
    }
    if let Some(h) = ov.histogram {
        fig = fig.merge(("metrics.histogram", h));
    }
    if let Some(i) = ov.metrics_interval {
        fig = fig.merge(("metrics.interval", i));
    }
    if let Some(e) = &ov.otlp_endpoint {
        fig = fig.merge(("metrics.otlp.endpoint", e));
    }
    if let Some(p) = ov.otlp_protocol {
        fig = fig.merge(("metrics.otlp.protocol", p));
    }
    fig
}

fn apply_scenario_overrides(
    cfg: &mut Config,
    have_file: bool,
    ov: &Overrides,
    origin: &str,
) -> Result<(), ConfigError> {
    cfg.thresholds.extend(ov.thresholds.iter().cloned());
    for (k, v) in &ov.headers {
        cfg.defaults.headers.insert(k.clone(), v.clone());
    }
    for url in &ov.remote_write_urls {
        match cfg
            .metrics
            .remote_write
            .iter_mut()
            .find(|rw| rw.url.is_empty())
        {
            Some(rw) => rw.url = url.clone(),
            None => cfg
                .metrics
                .remote_write
                .push(crate::export::RemoteWriteConfig {
                    url: url.clone(),
                    ..Default::default()
                }),
        }
    }
    for rw in &mut cfg.metrics.remote_write {
        ov.remote_write.apply(rw);
        rw.validate()
            .map_err(|e| ConfigError::invalid(origin, "metrics.remote_write", e.to_string()))?;
    }
    if !have_file {
        // Ad hoc: the flags describe one scenario.
        if ov.urls.is_empty() {
            if cfg.scenarios.is_empty() {
                return Err(ConfigError::invalid(
                    origin,
                    "--url",
                    "give a config FILE or at least one --url",
                ));
            }
        } else {
            let mut sc = super::ScenarioConfig {
                name: "adhoc".into(),
                ..Default::default()
            };
            let weight = 1;
            for url in &ov.urls {
                sc.tasks.push(super::TaskConfig {
                    weight,
                    requests: vec![super::RequestConfig {
                        method: ov.method.clone(),
                        url: url.clone(),
                        body: ov.body.clone(),
                        json: ov.json.clone(),
                        ..Default::default()
                    }],
                });
            }
            if ov.vus.is_none()
                && ov.rate.is_none()
                && ov.duration.is_none()
                && ov.iterations.is_none()
            {
                sc.vus = Some(10);
                sc.duration = Some(Dur::secs(10));
            }
            cfg.scenarios = vec![sc];
        }
    } else {
        for (flag, set) in [
            ("--method", ov.method.is_some()),
            ("--body", ov.body.is_some()),
            ("--json", ov.json.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    "command line",
                    flag,
                    "only applies to ad-hoc runs (no FILE); set it on the requests in the file",
                ));
            }
        }
        match ov.urls.as_slice() {
            [] => {}
            [one] => {
                cfg.defaults.base_url = Some(one.clone());
                for sc in &mut cfg.scenarios {
                    sc.base_url = None;
                }
            }
            _ => {
                return Err(ConfigError::invalid(
                    "command line",
                    "--url",
                    "with a config FILE, give --url once: it replaces the base URL",
                ));
            }
        }
    }
    for sc in &mut cfg.scenarios {
        if let Some(v) = ov.vus {
            sc.vus = Some(v);
        }
        if let Some(r) = ov.rate {
            sc.rate = Some(r);
            if sc
                .executor
                .is_some_and(|k| k != super::ExecutorKind::ConstantArrivalRate)
            {
                sc.executor = Some(super::ExecutorKind::ConstantArrivalRate);
                sc.stages.clear();
            }
        }
        if let Some(d) = ov.duration {
            sc.duration = Some(d);
        }
        if let Some(i) = ov.iterations {
            sc.iterations = Some(i);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use super::*;

    /// A prefix no other test uses: environment variables are process-wide.
    const PREFIX: &str = "STAMPEDE_LAYER_TEST_";

    const FILE: &str = r#"
        [run]
        id = "from-file"
        graceful_stop = "3s"
        [defaults]
        timeout = "7s"
        [[scenarios]]
        vus = 4
        duration = "1m"
        requests = [{ url = "http://127.0.0.1:1/" }]
    "#;

    #[test]
    fn layers_defaults_file_env_flags_in_that_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", FILE)?;
            let path = std::path::Path::new("s.toml");
            // Defaults fill what the file leaves out; the file beats defaults.
            let load = |ov: &Overrides| {
                load_with_env_prefix(Some(path), ov, PREFIX).map_err(|e| e.to_string())
            };
            let cfg = load(&Overrides::default())?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-file"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(7));
            assert_eq!(
                cfg.defaults.connect_timeout,
                Dur::secs(5),
                "built-in default"
            );
            assert_eq!(cfg.metrics.interval, None, "unset: OTLP uses its env or 5s");
            // The environment beats the file.
            jail.set_env(format!("{PREFIX}RUN__ID"), "from-env");
            jail.set_env(format!("{PREFIX}DEFAULTS__TIMEOUT"), "9s");
            jail.set_env(format!("{PREFIX}METRICS__INTERVAL"), "2s");
            let cfg = load(&Overrides::default())?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-env"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(9));
            assert_eq!(cfg.metrics.interval, Some(Dur::secs(2)));
            assert_eq!(cfg.run.graceful_stop, Dur::secs(3), "untouched file value");
            // Flags beat the environment, and scenario flags override every scenario.
            let ov = Overrides {
                run_id: Some("from-flag".into()),
                timeout: Some(Dur::secs(1)),
                vus: Some(9),
                duration: Some(Dur::secs(30)),
                ..Default::default()
            };
            let cfg = load(&ov)?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-flag"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(1));
            assert_eq!(
                cfg.metrics.interval,
                Some(Dur::secs(2)),
                "env still applies where no flag is given"
            );
            assert_eq!(cfg.scenarios[0].vus, Some(9));
            assert_eq!(cfg.scenarios[0].duration, Some(Dur::secs(30)));
            Ok(())
        });
    }

    #[test]
    fn an_unknown_env_key_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", FILE)?;
            jail.set_env(format!("{PREFIX}RUN__IDD"), "x");
            let e = load_with_env_prefix(
                Some(std::path::Path::new("s.toml")),
                &Overrides::default(),
                PREFIX,
            )
            .expect_err("unknown key")
            .to_string();
            assert!(e.contains("idd"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_file_that_is_missing_or_of_unknown_type_is_named() {
        let e = load(
            Some(std::path::Path::new("/nonexistent/x.toml")),
            &Overrides::default(),
        )
        .expect_err("missing")
        .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.ini");
        std::fs::write(&p, "x=1").expect("write");
        let e = load(Some(&p), &Overrides::default())
            .expect_err("ini")
            .to_string();
        assert!(e.contains("s.ini") && e.contains("unknown format"), "{e}");
    }
}
