//! Command-line interface: `run`, `validate`, `target`, `demo`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Dur, HistogramKind, OtlpProtocol, Overrides, parse_duration};

/// An OpenTelemetry-native HTTP load tester.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process; boxing the big variant would buy nothing.
pub enum Command {
    /// Run the scenarios of a TOML/YAML file, or an ad-hoc test described by flags.
    Run(Box<RunArgs>),
    /// Check a config file and exit (0 if valid, 2 if not).
    Validate {
        /// The TOML or YAML file.
        file: PathBuf,
    },
    /// Serve the embedded HTTP target (for demos, tests and benchmarks).
    Target {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
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
        /// A baseline summary: every tile and latency figure is shown beside the baseline's.
        #[arg(long, value_name = "PATH")]
        baseline: Option<PathBuf>,
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

/// Flags of `stampede demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Demo length.
    #[arg(long, default_value = "10s", value_parser = dur)]
    pub duration: Dur,
    /// Export flags.
    #[command(flatten)]
    pub export: ExportArgs,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Metric export flags (shared by `run` and `demo`).
#[derive(Debug, Args, Default, Clone)]
pub struct ExportArgs {
    /// Prometheus remote-write URL, e.g. http://127.0.0.1:9090/api/v1/write (repeatable).
    #[arg(long = "remote-write-url", value_name = "URL")]
    pub remote_write_url: Vec<String>,
    /// Remote-write push interval (>= 1s) [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = dur)]
    pub remote_write_interval: Option<Dur>,
    /// Extra remote-write header 'K: V' (repeatable), e.g. 'X-Scope-OrgID: team-a'.
    #[arg(long, value_name = "'K: V'", value_parser = header)]
    pub remote_write_header: Vec<(String, String)>,
    /// Remote-write bearer token read from this file.
    #[arg(long, value_name = "PATH")]
    pub remote_write_bearer_token_file: Option<std::path::PathBuf>,
    /// Remote-write bearer token read from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub remote_write_bearer_token_env: Option<String>,
    /// Remote-write basic-auth user; the password comes from --remote-write-password-env/-file.
    #[arg(long, value_name = "USER")]
    pub remote_write_user: Option<String>,
    /// Environment variable holding the remote-write basic-auth password.
    #[arg(long, value_name = "VAR", requires = "remote_write_user")]
    pub remote_write_password_env: Option<String>,
    /// File holding the remote-write basic-auth password.
    #[arg(long, value_name = "PATH", requires = "remote_write_user")]
    pub remote_write_password_file: Option<std::path::PathBuf>,
    /// PEM CA bundle to trust for remote-write HTTPS.
    #[arg(long, value_name = "PATH")]
    pub remote_write_ca_file: Option<std::path::PathBuf>,
    /// Skip certificate verification for remote-write HTTPS (testing only).
    #[arg(long)]
    pub remote_write_insecure: bool,
    /// OTLP endpoint, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 (HTTP).
    /// Also OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_METRICS_ENDPOINT.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport [default: grpc for port 4317, else http]. Also OTEL_EXPORTER_OTLP_PROTOCOL.
    #[arg(long, value_name = "grpc|http", value_parser = protocol)]
    pub otlp_protocol: Option<OtlpProtocol>,
    /// Collection/export interval [default: 5s]. Remote-write uses its own push_interval.
    #[arg(long, value_name = "DURATION", value_parser = dur)]
    pub metrics_interval: Option<Dur>,
    /// `explicit` buckets (default) or `exponential` (Prometheus native histograms).
    #[arg(long, value_name = "KIND", value_parser = histogram)]
    pub histogram: Option<HistogramKind>,
    /// Do not record OpenTelemetry instruments (the summary is still exact).
    #[arg(long)]
    pub no_metrics: bool,
}

/// Flags of `stampede run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML or YAML). Without it, the flags describe an ad-hoc run.
    pub file: Option<PathBuf>,
    /// Target URL (repeatable: requests are spread evenly). With FILE: replaces the base URL.
    #[arg(long, short = 'u', value_name = "URL")]
    pub url: Vec<String>,
    /// HTTP method for ad-hoc runs [default: GET].
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// Request header 'Name: value' (repeatable).
    #[arg(long, short = 'H', value_name = "'K: V'", value_parser = header)]
    pub header: Vec<(String, String)>,
    /// Request body (ad hoc).
    #[arg(long, conflicts_with = "json")]
    pub body: Option<String>,
    /// JSON request body (ad hoc; sets Content-Type).
    #[arg(long, value_parser = json)]
    pub json: Option<serde_json::Value>,
    /// Virtual users (closed model), or pre-allocated VUs with --rate.
    #[arg(long, short = 'c')]
    pub vus: Option<u64>,
    /// Requests (iterations) per second: open model.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Run length, e.g. 30s, 1m30s.
    #[arg(long, short = 'd', value_parser = dur)]
    pub duration: Option<Dur>,
    /// Total iterations (shared by the VUs).
    #[arg(long, short = 'n')]
    pub iterations: Option<u64>,
    /// Request timeout [default: 10s].
    #[arg(long, value_parser = dur)]
    pub timeout: Option<Dur>,
    /// Run id for the stampede_run_id label [default: generated, printed at start].
    #[arg(long)]
    pub run_id: Option<String>,
    /// Threshold, e.g. 'p99 < 500ms' (repeatable); any crossed → exit code 3.
    #[arg(long, value_name = "EXPR")]
    pub threshold: Vec<String>,
    /// Write the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// Write a self-contained HTML report to this file at the end (also on Ctrl-C).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Write thresholds and checks as JUnit XML test cases to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary to this file (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "PATH")]
    pub summary_markdown: Option<PathBuf>,
    /// No live progress line (and no status lines).
    #[arg(long, short)]
    pub quiet: bool,
    /// Status line interval when stderr is not a terminal (CI logs); 0 turns it off [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = dur)]
    pub status_interval: Option<Dur>,
    /// Interval of the summary's timeline [default: 1s; doubled to keep at most 1,000].
    #[arg(long, value_name = "DURATION", value_parser = dur)]
    pub timeline_interval: Option<Dur>,
    /// Use HTTP/2 (ALPN over TLS, prior knowledge over cleartext).
    #[arg(long)]
    pub http2: bool,
    /// Skip TLS certificate verification.
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Worker threads [default: one per CPU].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Grace period for in-flight requests at the end [default: 10s].
    #[arg(long, value_parser = dur)]
    pub graceful_stop: Option<Dur>,
    /// Export flags.
    #[command(flatten)]
    pub export: ExportArgs,
}

impl RunArgs {
    /// The flag layer of the configuration.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            urls: self.url.clone(),
            method: self.method.clone(),
            headers: self.header.clone(),
            body: self.body.clone(),
            json: self.json.clone(),
            vus: self.vus,
            rate: self.rate,
            duration: self.duration,
            iterations: self.iterations,
            timeout: self.timeout,
            run_id: self.run_id.clone(),
            thresholds: self.threshold.clone(),
            summary_json: self.summary_json.clone(),
            quiet: self.quiet,
            status_interval: self.status_interval,
            timeline_interval: self.timeline_interval,
            http2: self.http2,
            insecure: self.insecure,
            workers: self.workers,
            graceful_stop: self.graceful_stop,
            ..self.export.overrides()
        }
    }
}

impl ExportArgs {
    /// The export part of the flag layer.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            no_metrics: self.no_metrics,
            histogram: self.histogram,
            metrics_interval: self.metrics_interval,
            remote_write_urls: self.remote_write_url.clone(),
            remote_write: crate::config::RemoteWriteFlags {
                interval: self.remote_write_interval,
                headers: self.remote_write_header.clone(),
                bearer_token_file: self.remote_write_bearer_token_file.clone(),
                bearer_token_env: self.remote_write_bearer_token_env.clone(),
                user: self.remote_write_user.clone(),
                password_env: self.remote_write_password_env.clone(),
                password_file: self.remote_write_password_file.clone(),
                ca_file: self.remote_write_ca_file.clone(),
                insecure: self.remote_write_insecure,
            },
            otlp_endpoint: self.otlp_endpoint.clone(),
            otlp_protocol: self.otlp_protocol,
            ..Default::default()
        }
    }
}

fn tolerance(s: &str) -> Result<f64, String> {
    crate::ci::parse_tolerance(s)
}

fn dur(s: &str) -> Result<Dur, String> {
    parse_duration(s).map(Dur)
}

fn header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}`: write a header as 'Name: value'"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("`{s}`: the header name is empty"));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

fn json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

fn protocol(s: &str) -> Result<OtlpProtocol, String> {
    match s {
        "grpc" => Ok(OtlpProtocol::Grpc),
        "http" | "http/protobuf" => Ok(OtlpProtocol::Http),
        _ => Err(format!("`{s}`: use grpc or http")),
    }
}

fn histogram(s: &str) -> Result<HistogramKind, String> {
    match s {
        "explicit" | "classic" => Ok(HistogramKind::Explicit),
        "exponential" | "native" => Ok(HistogramKind::Exponential),
        _ => Err(format!("`{s}`: use explicit or exponential")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ad_hoc_run() {
        let cli = Cli::try_parse_from([
            "stampede",
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
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        let o = r.overrides();
        assert_eq!(o.headers, vec![("X-Api-Key".into(), "abc".into())]);
        assert_eq!(o.duration, Some(Dur::secs(90)));
        assert_eq!(o.vus, Some(5));
        assert_eq!(o.remote_write_urls.len(), 1);
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for args in [
            &["stampede", "run", "--duration", "soon"][..],
            &["stampede", "run", "-H", "no-colon"],
            &["stampede", "run", "--json", "{nope"],
            &["stampede", "run", "--otlp-protocol", "smtp"],
            &["stampede", "run", "--vus", "-3"],
        ] {
            let e = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}");
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
        let cfg = crate::config::load(None, &r.overrides()).unwrap();
        assert_eq!(cfg.metrics.remote_write.len(), 2);
        for rw in &cfg.metrics.remote_write {
            assert_eq!(rw.push_interval, std::time::Duration::from_secs(1));
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
            remote_write_urls: vec!["http://127.0.0.1:9090/api/v1/write".into()],
            remote_write: crate::config::RemoteWriteFlags {
                interval: Some(Dur::millis(100)),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = crate::config::load(None, &ov).unwrap_err().to_string();
        assert!(e.contains("push_interval"), "{e}");
    }
}
