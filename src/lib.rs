//! stampede: an OpenTelemetry-native HTTP load tester.
//!
//! The data flows through the modules in this order:
//! [`cli`] → [`config`] (figment layers, validation) → [`plan`] (parsed requests, schedules) →
//! [`run`] (workers, signals, [`progress`]) → [`executor`] (VUs and pacers) → [`http`] (the
//! client: HTTP/1.1, HTTP/2, TLS) → [`stats`] (exact local histograms) and [`metrics`]
//! (OpenTelemetry instruments) → [`export`] (OTLP, Prometheus remote-write) → [`report`]
//! (summary, thresholds). At the bottom, [`outcome`] holds the vocabulary every layer shares
//! (`ErrorKind`, `Outcome`, `Sample`) and imports no other stampede module; [`term`] (terminal
//! width, colour, the live area and the log writer) is a leaf too.
//!
//! Layers, bottom to top (a module uses only modules of lower layers; `tests/layers.rs` reads
//! every `crate::` path in src/ and fails on an arrow that points up or sideways):
//! 1. outcome, template, term, suggest, target, schedule, task, segment, coordinator, process
//! 2. threshold, http, stats, trace
//! 3. config
//! 4. plan
//! 5. metrics, slo
//! 6. executor, export
//! 7. timeline, progress
//! 8. report
//! 9. ci, merge
//! 10. html
//! 11. run
//! 12. cli, distributed
//! 13. demo, capacity
//!
//! `lib.rs` itself (exit codes, `run`, `main_with_args`) sits above them all.

mod capacity;
mod ci;
mod cli;
pub mod config;
mod coordinator;
mod demo;
mod distributed;
mod executor;
pub mod export;
mod html;
mod http;
mod merge;
pub mod metrics;
mod outcome;
mod plan;
pub mod process;
mod progress;
pub mod report;
mod run;
mod schedule;
mod segment;
mod slo;
mod stats;
mod suggest;
pub mod target;
mod task;
mod template;
mod term;
#[cfg(test)]
mod test_support;
mod threshold;
mod timeline;
mod trace;

use std::path::Path;
use std::process::ExitCode;

pub use report::Summary;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run could not be carried out (runtime failure, e.g. a port in use).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: at least one threshold was crossed.
pub const EXIT_THRESHOLDS: u8 = 3;
/// Exit code: a distributed run's merged result is incomplete: a segment died or never sent
/// its summary (the coordinator, `stampede merge`).
pub const EXIT_INCOMPLETE: u8 = 4;
/// Exit code: interrupted (Ctrl-C / SIGTERM) before the planned end; the summary is printed.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Errors at the edge, each mapped to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration (exit 2).
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Bad export configuration (exit 2).
    #[error(transparent)]
    Export(#[from] export::ExportError),
    /// Anything else (exit 1).
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Export(_) => EXIT_USAGE,
            Error::Other(_) => EXIT_FAILURE,
        }
    }
}

/// Options that only affect presentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct Presentation {
    /// Print the start banner and the text summary.
    pub print: bool,
    /// Live progress: a progress area on a terminal, else periodic status lines.
    pub progress: bool,
}

/// Loads, plans and runs a configuration; returns the summary. The library entry point used
/// by the binary and by tests.
pub fn run(
    file: Option<&Path>,
    overrides: &config::Overrides,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let cfg = config::load(file, overrides)?;
    run_config(cfg, file, presentation)
}

/// Runs an already merged configuration.
pub fn run_config(
    cfg: config::Config,
    file: Option<&Path>,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    if capacity::wanted(&cfg) {
        return capacity::run(cfg, &origin, presentation);
    }
    let run_id = cfg.run.id.clone().unwrap_or_else(generate_run_id);
    let quiet = cfg.run.quiet;
    let status_interval = cfg.run.status_interval.get();
    let config_json = report::redacted_config(&cfg);
    let plan = prepare(cfg, run_id, &origin)?;
    // Checked by the plan: its directory exists.
    let summary_path = plan.summary_json.clone();
    let summary = run::execute(
        plan,
        run::Display {
            progress: presentation.progress && !quiet,
            banner: presentation.print,
            status_interval: Some(status_interval),
        },
    )
    .map_err(|e| match e {
        run::RunError::Export(e) => Error::Export(e),
        run::RunError::Io(e) => Error::Other(anyhow::Error::new(e)),
        e @ run::RunError::Panicked(_) => Error::Other(anyhow::Error::new(e)),
    })?;
    let mut summary = summary;
    if let Some(m) = summary.meta.as_mut() {
        m.config = config_json;
        m.command_line = report::redacted_args(COMMAND_LINE.get().map_or(&[], Vec::as_slice));
    }
    if presentation.print {
        print!(
            "{}",
            report::render_text(&summary, &report::TextStyle::for_stdout())
        );
    }
    if let Some(p) = summary_path {
        let json = ci::summary_json_text(&summary)
            .map_err(|e| anyhow::anyhow!("cannot serialize the summary: {e}"))?;
        std::fs::write(&p, json + "\n")
            .map_err(|e| anyhow::anyhow!("cannot write the summary to {}: {e}", p.display()))?;
    }
    Ok(summary)
}

/// Builds the plan and makes every check a run makes before it sends anything, so `validate`
/// and `run` refuse the same input (exit 2, naming the file and key): the plan's (URLs, ports,
/// headers and templates rendered with the initial variables, executor keys, limits,
/// thresholds, the summary file's directory) and the OTLP settings exactly as the exporter
/// resolves them (`export::otlp::resolve`, environment included), headers checked for CR/LF.
pub fn prepare(cfg: config::Config, run_id: String, origin: &str) -> Result<plan::Plan, Error> {
    let plan = plan::build(cfg, run_id, origin)?;
    check_otlp(&plan, origin)?;
    for (i, rw) in plan.metrics.remote_write.iter().enumerate() {
        export::remote_write::check(rw).map_err(|e| {
            config::ConfigError::invalid(
                origin,
                format!("metrics.remote_write[{i}]"),
                e.to_string(),
            )
        })?;
    }
    Ok(plan)
}

fn check_otlp(plan: &plan::Plan, origin: &str) -> Result<(), config::ConfigError> {
    use export::otlp::{ENV_HEADERS, OtlpError, resolve};
    let cfg = plan.metrics.otlp.as_ref();
    let resolved = resolve(cfg, &template::process_env).map_err(|e| match e {
        OtlpError::Invalid {
            source_name,
            message,
        } => config::ConfigError::invalid(origin, source_name, message),
        other => config::ConfigError::invalid(origin, "metrics.otlp", other.to_string()),
    })?;
    if plan.tracing.export.is_some() && resolved.is_none() {
        return Err(config::ConfigError::invalid(
            origin,
            "tracing.export",
            "client spans go to the OTLP endpoint: set --otlp-endpoint (metrics.otlp.endpoint) or OTEL_EXPORTER_OTLP_ENDPOINT",
        ));
    }
    if let Some(i) = resolved.as_ref().and_then(|r| r.interval)
        && i > config::MAX_DURATION
    {
        return Err(config::ConfigError::invalid(
            origin,
            export::otlp::ENV_INTERVAL,
            "too long: every duration is at most 365 days",
        ));
    }
    for (k, v) in resolved.iter().flat_map(|r| &r.headers) {
        // The file's headers are checked by name in config::validate; what is left came from
        // the environment. Values may be secrets: never quoted.
        let from_file = cfg.is_some_and(|c| c.headers.keys().any(|h| h.eq_ignore_ascii_case(k)));
        let key = if from_file {
            format!("metrics.otlp.headers.{k}")
        } else {
            ENV_HEADERS.to_string()
        };
        if ::http::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(config::ConfigError::invalid(
                origin,
                key,
                format!("{k:?} is not a valid header name"),
            ));
        }
        if ::http::HeaderValue::from_str(v).is_err() {
            return Err(config::ConfigError::invalid(
                origin,
                key,
                format!(
                    "the value of header {k:?} is not valid (control characters such as CR or LF)"
                ),
            ));
        }
    }
    Ok(())
}

/// The exit code a summary calls for.
pub fn summary_exit_code(s: &Summary) -> u8 {
    if s.thresholds.iter().any(|t| !t.ok) || s.aborted.is_some() {
        EXIT_THRESHOLDS
    } else if s.interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    }
}

/// A run id: UTC timestamp plus four random hex digits, so sorting by id sorts by start time.
pub fn generate_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{:04x}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        fastrand::u16(..)
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The command line of this process, for the summary's `meta` (set by [`main_with_args`]).
static COMMAND_LINE: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// The binary's `main`, as a function tests can call.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    use clap::Parser;
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let _ = COMMAND_LINE.set(
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    );
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    init_logging();
    ExitCode::from(dispatch(cli))
}

/// Logs go to stderr above the live progress area ([`term::LogWriter`]), coloured only when
/// stderr is a terminal and `NO_COLOR` is not set (CI logs get no escape codes).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAMPEDE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(term::LogWriter)
        .with_ansi(term::colour(term::Stream::Stderr))
        .with_target(false)
        .try_init();
}

fn dispatch(cli: cli::Cli) -> u8 {
    match cli.command {
        cli::Command::Validate { file } => {
            match config::load(Some(&file), &config::Overrides::default())
                .map_err(Error::from)
                .and_then(|cfg| {
                    let origin = file.display().to_string();
                    prepare(cfg, "validate".into(), &origin)?;
                    Ok(())
                }) {
                Ok(()) => {
                    println!("{}: ok", file.display());
                    EXIT_OK
                }
                Err(e) => report_error(&e),
            }
        }
        cli::Command::Run(args) if args.dist.active() => {
            let dist = args.dist.clone();
            let (file, ov) = args.into_parts();
            run_distributed(file.as_deref(), &ov, &dist)
        }
        cli::Command::Merge {
            summaries,
            summary_json,
            thresholds,
        } => merge_files(&summaries, summary_json.as_deref(), &thresholds),
        cli::Command::Run(args) => {
            let (file, ov) = args.into_parts();
            match run(
                file.as_deref(),
                &ov,
                Presentation {
                    print: true,
                    progress: true,
                },
            ) {
                Ok(s) => finish_run(&s, &ov.output),
                Err(e) => report_error(&e),
            }
        }
        cli::Command::Report {
            summary,
            output,
            baseline,
        } => report_file(&summary, &output, baseline.as_deref()),
        cli::Command::Compare {
            baseline,
            current,
            max_regression,
            markdown,
        } => compare_files(&baseline, &current, max_regression, markdown),
        cli::Command::FindMax(args) if args.dist.active() => {
            let (file, ov, search, dist) = args.into_parts();
            let stripe = match distributed::resolve(&dist, &|k| std::env::var(k).ok()) {
                Ok(s) => s,
                Err(m) => {
                    eprintln!("error: {m}");
                    return EXIT_USAGE;
                }
            };
            match capacity::load(file.as_deref(), &ov, &search) {
                Ok((cfg, origin)) => search_distributed(cfg, &origin, stripe, &dist, &ov.output),
                Err(e) => report_error(&e),
            }
        }
        cli::Command::FindMax(args) => {
            let (file, ov, search, _) = args.into_parts();
            match capacity::find_max(
                file.as_deref(),
                &ov,
                &search,
                Presentation {
                    print: true,
                    progress: false,
                },
            ) {
                Ok(s) => finish_run(&s, &ov.output),
                Err(e) => report_error(&e),
            }
        }
        cli::Command::Target {
            listen,
            capacity,
            queue,
            degrade_after,
            degrade_for,
            degrade_latency,
        } => {
            if !listen.ip().is_loopback() {
                eprintln!(
                    "stampede target: note: listening on {listen}, reachable beyond this machine"
                );
            }
            let opts = target::Options {
                capacity,
                queue: queue.get(),
                degrade_after: degrade_after.map(|d| d.get()),
                degrade_for: degrade_for.map(|d| d.get()),
                degrade_latency: degrade_latency.get(),
            };
            match target::spawn_background_with(listen, opts) {
                Ok(t) => {
                    println!("stampede target listening on http://{}", t.addr);
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    eprintln!("stampede target: cannot listen on {listen}: {e}");
                    EXIT_FAILURE
                }
            }
        }
        cli::Command::Demo(args) => match demo::run(&args) {
            Ok(s) => {
                let code = summary_exit_code(&s);
                match write_ci_outputs(&s, code, &args.output) {
                    Ok(()) => code,
                    Err(e) => report_error(&e),
                }
            }
            Err(e) => report_error(&e),
        },
    }
}

/// The exit code of a finished run or search, after its CI outputs are written.
fn finish_run(s: &Summary, output: &config::OutputFlags) -> u8 {
    let code = capacity::exit_code(s);
    match write_ci_outputs(s, code, output) {
        Ok(()) => code,
        Err(e) => report_error(&e),
    }
}

/// `--junit` and `--summary-markdown` (and `$GITHUB_STEP_SUMMARY`) of a finished run.
fn write_ci_outputs(s: &Summary, code: u8, args: &config::OutputFlags) -> Result<(), Error> {
    let write = |p: &Path, text: &str, what: &str| {
        std::fs::write(p, text)
            .map_err(|e| anyhow::anyhow!("cannot write the {what} to {}: {e}", p.display()))
    };
    if let Some(p) = &args.junit {
        write(p, &ci::junit(s), "JUnit report")?;
    }
    if let Some(p) = &args.report {
        // Through the JSON text, so the report equals one remade later from --summary-json.
        let v = serde_json::to_string(s)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t))
            .map_err(|e| anyhow::anyhow!("cannot serialize the summary: {e}"))?;
        write(p, &html::render(&v, code, None), "HTML report")?;
    }
    let step = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty());
    if args.summary_markdown.is_some() || step.is_some() {
        let md = ci::markdown(s, code);
        if let Some(p) = &args.summary_markdown {
            write(p, &md, "Markdown summary")?;
        }
        if let Some(p) = step {
            use std::io::Write as _;
            let p = std::path::PathBuf::from(p);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .and_then(|mut f| f.write_all(format!("{md}\n").as_bytes()))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot append to GITHUB_STEP_SUMMARY ({}): {e}",
                        p.display()
                    )
                })?;
        }
    }
    Ok(())
}

/// `stampede report`: the HTML report of a summary file (exit code as the run's would be).
fn report_file(summary: &Path, output: &Path, baseline: Option<&Path>) -> u8 {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|t| {
                serde_json::from_str::<serde_json::Value>(&t)
                    .map_err(|e| format!("{}: not a summary JSON file: {e}", p.display()))
            })
    };
    let docs = read(summary).and_then(|v| Ok((v, baseline.map(read).transpose()?)));
    let (v, base) = match docs {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let crossed = v["thresholds"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x["ok"] != serde_json::Value::Bool(true)));
    let code = if crossed {
        EXIT_THRESHOLDS
    } else if v["interrupted"] == serde_json::Value::Bool(true) {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    };
    match std::fs::write(output, html::render(&v, code, base.as_ref())) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!(
                "error: cannot write the report to {}: {e}",
                output.display()
            );
            EXIT_FAILURE
        }
    }
}

/// `stampede compare`: 0 without regression, 3 with one, 2 for unreadable input.
fn compare_files(base: &Path, cur: &Path, tolerance: f64, markdown: bool) -> u8 {
    let read = |p: &Path| -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a summary JSON file: {e}", p.display()))
    };
    let docs = read(base).and_then(|b| Ok((b, read(cur)?)));
    let result = docs.and_then(|(b, c)| {
        ci::compare(&b, &c, tolerance)
            .map_err(|e| format!("{}, {}: {e}", base.display(), cur.display()))
    });
    match result {
        Ok(c) => {
            print!("{}", ci::render_comparison(&c, markdown));
            if c.regressed() {
                EXIT_THRESHOLDS
            } else {
                EXIT_OK
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

/// The exit code of a merged summary: 4 when a segment is missing, else as a run's.
fn merged_exit_code(s: &Summary) -> u8 {
    if s.distributed
        .as_ref()
        .is_some_and(|d| !d.missing.is_empty())
    {
        EXIT_INCOMPLETE
    } else {
        summary_exit_code(s)
    }
}

/// Prints a merged summary: which segments it holds, then the usual text.
fn print_merged(s: &Summary) {
    if let Some(d) = &s.distributed {
        let list = |v: &[u32]| {
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "\nmerged summary of {} segment{} (start skew {:.1} ms)",
            d.merged.len(),
            if d.merged.len() == 1 { "" } else { "s" },
            d.start_skew_s * 1e3
        );
        if !d.cpu_bound.is_empty() {
            println!(
                "WARNING: the generator of segment{} {} was CPU-bound: results may measure the generator, not the target",
                if d.cpu_bound.len() == 1 { "" } else { "s" },
                list(&d.cpu_bound)
            );
        }
        if !d.missing.is_empty() {
            println!(
                "INCOMPLETE: missing segment{} {} of {} (died or never reported); the numbers below lack them",
                if d.missing.len() == 1 { "" } else { "s" },
                list(&d.missing),
                d.segments
            );
        }
    }
    print!(
        "{}",
        report::render_text(s, &report::TextStyle::for_stdout())
    );
}

fn write_summary(s: &Summary, p: &Path) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(s)
        .map_err(|e| anyhow::anyhow!("cannot serialize the summary: {e}"))?;
    std::fs::write(p, json + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write the summary to {}: {e}", p.display()))?;
    Ok(())
}

/// `stampede run --segment-count N …`: one generator of a distributed run (see
/// [`distributed`]). Exit codes as a run's; the coordinator's from the merged summary, 4 when
/// a segment is missing.
fn run_distributed(file: Option<&Path>, ov: &config::Overrides, dist: &config::DistFlags) -> u8 {
    let usage = |m: String| {
        eprintln!("error: {m}");
        EXIT_USAGE
    };
    let stripe = match distributed::resolve(dist, &|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(m) => return usage(m),
    };
    let mut cfg = match config::load(file, ov) {
        Ok(c) => c,
        Err(e) => return report_error(&Error::from(e)),
    };
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    if capacity::wanted(&cfg) {
        return search_distributed(cfg, &origin, stripe, dist, &ov.output);
    }
    let hash = distributed::scenario_hash(&cfg, false);
    cfg.metrics.segment = Some(stripe.index as u32);
    let run_id = cfg.run.id.clone().unwrap_or_else(generate_run_id);
    let display = run::Display {
        progress: !cfg.run.quiet,
        banner: true,
        status_interval: Some(cfg.run.status_interval.get()),
    };
    let mut plan = match prepare(cfg, run_id, &origin) {
        Ok(p) => p,
        Err(e) => return report_error(&e),
    };
    let summary_path = plan.summary_json.clone();
    let (index, count, label) = (stripe.index, stripe.count, stripe.label.clone());
    plan.apply_segment(stripe);
    let out = match distributed::run(plan, hash, dist, display) {
        Ok(o) => o,
        Err(distributed::DistError::Usage(m)) => return usage(m),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    println!("segment {index} of {count} ({label}): local summary");
    print!(
        "{}",
        report::render_text(&out.local, &report::TextStyle::for_stdout())
    );
    let mut result = Ok(());
    if let Some(p) = &dist.segment_summary_json {
        result = result.and(write_summary(&out.local, p));
    }
    let (main, code) = match &out.merged {
        Some(m) => {
            print_merged(m);
            (m, merged_exit_code(m))
        }
        None => (&out.local, summary_exit_code(&out.local)),
    };
    if let Some(p) = &summary_path {
        result = result.and(write_summary(main, p));
    }
    match result.and_then(|()| write_ci_outputs(main, code, &ov.output)) {
        Ok(()) => code,
        Err(e) => report_error(&e),
    }
}

/// A capacity search over execution segments (`find-max --segment-count N`, or a
/// `capacity-search` executor run with segments): the coordinator prints and writes the search's
/// summary and exits as `find-max` does; the other segments write their last step's summary
/// (`--segment-summary-json`) and exit 0 when the coordinator ended the search.
fn search_distributed(
    cfg: config::Config,
    origin: &str,
    stripe: segment::Stripe,
    dist: &config::DistFlags,
    output: &config::OutputFlags,
) -> u8 {
    let (index, count) = (stripe.index, stripe.count);
    let hash = distributed::scenario_hash(&cfg, true);
    let presentation = Presentation {
        print: true,
        progress: false,
    };
    match capacity::run_segmented(cfg, origin, presentation, stripe, hash, dist) {
        Ok(capacity::Segmented::Coordinator(s, local)) => {
            let mut result = Ok(());
            if let (Some(p), Some(local)) = (&dist.segment_summary_json, &local) {
                result = write_summary(local, p);
            }
            match result {
                Ok(()) => finish_run(&s, output),
                Err(e) => report_error(&e),
            }
        }
        Ok(capacity::Segmented::Segment(f)) => {
            if let (Some(p), Some(s)) = (&dist.segment_summary_json, &f.last) {
                if let Err(e) = write_summary(s, p) {
                    return report_error(&e);
                }
            }
            match (&f.stopped, f.interrupted) {
                (_, true) => {
                    eprintln!("segment {index} of {count}: interrupted");
                    EXIT_INTERRUPTED
                }
                (Some(why), false) => {
                    println!(
                        "segment {index} of {count}: {why}; the coordinator (segment 0) has the result"
                    );
                    EXIT_OK
                }
                (None, false) => {
                    eprintln!(
                        "error: segment {index} of {count}: the coordinator stopped the search"
                    );
                    if f.last.as_ref().is_some_and(|s| s.interrupted) {
                        EXIT_INTERRUPTED
                    } else {
                        EXIT_FAILURE
                    }
                }
            }
        }
        Err(capacity::SegmentedError::Search(e)) => report_error(&e),
        Err(capacity::SegmentedError::Dist(distributed::DistError::Usage(m))) => {
            eprintln!("error: {m}");
            EXIT_USAGE
        }
        Err(capacity::SegmentedError::Dist(e)) => {
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}

/// `stampede merge`: the coordinator's merge, offline.
fn merge_files(files: &[std::path::PathBuf], out: Option<&Path>, thresholds: &[String]) -> u8 {
    let mut parsed = Vec::new();
    for (i, t) in thresholds.iter().enumerate() {
        match threshold::Threshold::parse(t) {
            Ok(t) => parsed.push(t),
            Err(e) => {
                eprintln!("error: --threshold #{}: {e}", i + 1);
                return EXIT_USAGE;
            }
        }
    }
    let mut parts = Vec::new();
    for f in files {
        let part = std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {e}", f.display()))
            .and_then(|t| {
                serde_json::from_str::<serde_json::Value>(&t)
                    .map_err(|e| format!("{}: not a summary JSON file: {e}", f.display()))
            })
            .and_then(|v| {
                merge::Part::from_value(&f.display().to_string(), v).map_err(|e| e.to_string())
            });
        match part {
            Ok(p) => parts.push(p),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let merged = match merge::merge(&parts, &parsed, None) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    print_merged(&merged);
    if let Some(p) = out
        && let Err(e) = write_summary(&merged, p)
    {
        return report_error(&e);
    }
    merged_exit_code(&merged)
}

fn report_error(e: &Error) -> u8 {
    eprintln!("error: {e}");
    e.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_sort_by_time() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        let id = generate_run_id();
        assert_eq!(id.len(), "20261126-021500-ab12".len(), "{id}");
    }
}
