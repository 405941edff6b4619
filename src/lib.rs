//! stampede: an OpenTelemetry-native HTTP load tester.
//!
//! The data flows through the modules in this order: [`command`] (the command line and what
//! every command shares) → [`config`] (figment layers, validation) → [`scenario`] (templates,
//! schedules, the execution segment, the plan: parsed requests) → [`run`] (workers, signals) →
//! [`engine`] (VUs and pacers) → [`http`] (the client: HTTP/1.1, HTTP/2, TLS) → [`stats`] (exact
//! local histograms) and [`metrics`] (OpenTelemetry instruments) → [`export`] (OTLP,
//! Prometheus remote-write) → [`report`] (timeline, live progress, summary, CI outputs, HTML);
//! [`distributed`] runs a test on several generators and merges their summaries. At the
//! bottom, [`outcome`] holds the vocabulary every layer shares (`ErrorKind`, `Outcome`,
//! `Sample`) and imports no other stampede module; [`term`] (terminal width, colour, the live
//! area and the log writer) is a leaf too.
//!
//! Each folder of src/ is a band of neighbouring layers; a module in a folder is named by its
//! path (`engine::executor`), a folder named alone (`http`) is one module of one layer.
//!
//! Layers, bottom to top (a module uses only modules of lower layers; `tests/layers.rs` reads
//! every `crate::` path in src/ and fails on an arrow that points up or sideways, on a folder
//! whose modules are not neighbours here, and on a file of src/ this list does not name):
//! 1. outcome, term, suggest, target, busy
//! 2. threshold, http, stats, trace, process
//! 3. config
//! 4. scenario::template, scenario::schedule, scenario::segment
//! 5. scenario::plan
//! 6. metrics, slo
//! 7. engine::pace, engine::task
//! 8. engine::executor
//! 9. export
//! 10. report::timeline, report::progress
//! 11. report::summary
//! 12. report::ci
//! 13. report::html
//! 14. run
//! 15. distributed::coordinator, distributed::merge
//! 16. distributed::generator
//! 17. command::cli, command::shared
//! 18. command::demo, command::capacity
//!
//! `lib.rs` itself (the public `run`, `main_with_args` and the command dispatch) sits above them
//! all; no module imports it (what commands share is in [`command::shared`]).

mod busy;
mod command;
pub mod config;
mod distributed;
mod engine;
pub mod export;
mod http;
pub mod metrics;
mod outcome;
pub mod process;
pub mod report;
mod run;
mod scenario;
mod slo;
mod stats;
mod suggest;
pub mod target;
mod term;
#[cfg(test)]
mod test_support;
mod threshold;
mod trace;

use command::{capacity, cli, demo};
use std::path::Path;
use std::process::ExitCode;

pub use report::summary::Summary;

pub use command::shared::{
    EXIT_EXPORT, EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_THRESHOLDS,
    EXIT_USAGE, Error, Presentation, generate_run_id, prepare, summary_exit_code,
};

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

/// Runs an already merged configuration: one run, or a capacity search when its scenario asks
/// for one (`executor = "capacity-search"`).
pub fn run_config(
    cfg: config::Config,
    file: Option<&Path>,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    if capacity::wanted(&cfg) {
        return capacity::run(cfg, &origin, presentation);
    }
    command::shared::run_one(cfg, &origin, presentation)
}

/// The binary's `main`, as a function tests can call.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    use clap::Parser;
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    command::shared::set_command_line(
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
            let (dist, search) = (args.dist.clone(), args.search.clone());
            let (file, ov) = args.into_parts();
            run_distributed(file.as_deref(), &ov, &dist, &search)
        }
        cli::Command::Merge {
            summaries,
            summary_json,
            thresholds,
        } => merge_files(&summaries, summary_json.as_deref(), &thresholds),
        cli::Command::Run(args) => run_command(*args),
        cli::Command::Report {
            summary,
            output,
            baseline,
            max_regression,
        } => report_file(&summary, &output, baseline.as_deref(), max_regression),
        cli::Command::Compare {
            baseline,
            current,
            max_regression,
            markdown,
        } => compare_files(&baseline, &current, max_regression, markdown),
        cli::Command::FindMax(args) if args.dist.active() => {
            let (file, ov, search, dist) = args.into_parts();
            let stripe = match distributed::generator::resolve(&dist, &|k| std::env::var(k).ok()) {
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
                warn_export(&s, code);
                match write_ci_outputs(&s, code, &args.output) {
                    Ok(()) => code,
                    Err(e) => report_error(&e),
                }
            }
            Err(e) => report_error(&e),
        },
    }
}

/// `stampede run` on one generator: a run, or with search flags a capacity-search file's
/// search.
fn run_command(args: cli::RunArgs) -> u8 {
    let search = args.search.clone();
    let (file, ov) = args.into_parts();
    let presentation = Presentation {
        print: true,
        progress: true,
    };
    let result = match search.given() {
        None => run(file.as_deref(), &ov, presentation),
        Some(_) => load_search(file.as_deref(), &ov, &search)
            .and_then(|(cfg, origin)| capacity::run(cfg, &origin, presentation)),
    };
    match result {
        Ok(s) => finish_run(&s, &ov.output),
        Err(e) => report_error(&e),
    }
}

/// `stampede run FILE --max-rate …`: the search flags apply to a file whose scenario is a
/// `capacity-search` (as with `find-max`); anything else is told to use `find-max`.
fn load_search(
    file: Option<&Path>,
    ov: &config::Overrides,
    search: &config::CapacityFlags,
) -> Result<(config::Config, String), Error> {
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    let cfg = config::load(file, ov)?;
    if let Some(flag) = search.given()
        && !capacity::wanted(&cfg)
    {
        let what = file.map_or("an ad-hoc run".to_string(), |p| p.display().to_string());
        return Err(config::ConfigError::invalid(
            &origin,
            flag,
            format!(
                "applies to a capacity search, and {what} is not one: use `stampede find-max {} {flag} …` (or executor = \"capacity-search\" in the scenario)",
                file.map_or("-u URL".to_string(), |p| p.display().to_string())
            ),
        )
        .into());
    }
    capacity::load(file, ov, search)
}

/// The exit code of a finished run or search, after its CI outputs are written.
fn finish_run(s: &Summary, output: &config::OutputFlags) -> u8 {
    let code = command::shared::export_exit_code(s, capacity::exit_code(s));
    warn_export(s, code);
    match write_ci_outputs(s, code, output) {
        Ok(()) => code,
        Err(e) => report_error(&e),
    }
}

/// The last word on an incomplete export, after the summary: what it means for the
/// dashboards, and what the exit code says about it.
fn warn_export(s: &Summary, code: u8) {
    if !s.export_incomplete() {
        return;
    }
    let n = s.export.iter().filter(|e| e.not_delivered > 0).count();
    let what = if n == 1 {
        "an exporter"
    } else {
        "several exporters"
    };
    if s.fail_on_export_error {
        let exit = if code == EXIT_EXPORT {
            format!(": exit {EXIT_EXPORT}")
        } else {
            String::new()
        };
        eprintln!(
            "error: {what} delivered less than everything (see `export` above): the dashboards lack part of this run (--fail-on-export-error{exit})"
        );
    } else {
        eprintln!(
            "WARNING: {what} delivered less than everything (see `export` above): the dashboards lack part of this run; --fail-on-export-error ([run] fail_on_export_error) makes this exit {EXIT_EXPORT}"
        );
    }
}

/// `--junit` and `--summary-markdown` (and `$GITHUB_STEP_SUMMARY`) of a finished run.
fn write_ci_outputs(s: &Summary, code: u8, args: &config::OutputFlags) -> Result<(), Error> {
    let write = |p: &Path, text: &str, what: &str| {
        std::fs::write(p, text)
            .map_err(|e| anyhow::anyhow!("cannot write the {what} to {}: {e}", p.display()))
    };
    if let Some(p) = &args.junit {
        write(p, &report::ci::junit(s), "JUnit report")?;
    }
    if let Some(p) = &args.report {
        // Through the JSON text, so the report equals one remade later from --summary-json.
        let v = serde_json::to_string(s)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t))
            .map_err(|e| anyhow::anyhow!("cannot serialize the summary: {e}"))?;
        write(p, &report::html::render(&v, code, None), "HTML report")?;
    }
    let step = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty());
    if args.summary_markdown.is_some() || step.is_some() {
        let md = report::ci::markdown(s, code);
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
fn report_file(summary: &Path, output: &Path, baseline: Option<&Path>, tolerance: f64) -> u8 {
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
    let export_incomplete = v["fail_on_export_error"] == serde_json::Value::Bool(true)
        && v["export"].as_array().is_some_and(|rows| {
            rows.iter()
                .any(|r| r["not_delivered"].as_u64().is_some_and(|n| n > 0))
        });
    let code = if crossed {
        EXIT_THRESHOLDS
    } else if v["interrupted"] == serde_json::Value::Bool(true) {
        EXIT_INTERRUPTED
    } else if export_incomplete {
        EXIT_EXPORT
    } else {
        EXIT_OK
    };
    let base = base.as_ref().map(|b| report::html::Baseline {
        summary: b,
        tolerance,
    });
    match std::fs::write(output, report::html::render(&v, code, base)) {
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
        report::ci::compare(&b, &c, tolerance)
            .map_err(|e| format!("{}, {}: {e}", base.display(), cur.display()))
    });
    match result {
        Ok(c) => {
            print!("{}", report::ci::render_comparison(&c, markdown));
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
        report::summary::render_text(s, &report::summary::TextStyle::for_stdout())
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
fn run_distributed(
    file: Option<&Path>,
    ov: &config::Overrides,
    dist: &config::DistFlags,
    search: &config::CapacityFlags,
) -> u8 {
    let usage = |m: String| {
        eprintln!("error: {m}");
        EXIT_USAGE
    };
    let stripe = match distributed::generator::resolve(dist, &|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(m) => return usage(m),
    };
    let loaded = match search.given() {
        None => config::load(file, ov).map_err(Error::from),
        Some(_) => load_search(file, ov, search).map(|(c, _)| c),
    };
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => return report_error(&e),
    };
    let origin = file.map_or("command line".to_string(), |p| p.display().to_string());
    if capacity::wanted(&cfg) {
        return search_distributed(cfg, &origin, stripe, dist, &ov.output);
    }
    let hash = distributed::generator::scenario_hash(&cfg, false);
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
    let out = match distributed::generator::run(plan, hash, dist, display) {
        Ok(o) => o,
        Err(distributed::generator::DistError::Usage(m)) => return usage(m),
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    println!("segment {index} of {count} ({label}): local summary");
    print!(
        "{}",
        report::summary::render_text(&out.local, &report::summary::TextStyle::for_stdout())
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
    // This generator's own exporters: the merged summary does not hold them.
    let code = command::shared::export_exit_code(&out.local, code);
    warn_export(&out.local, code);
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
    stripe: scenario::segment::Stripe,
    dist: &config::DistFlags,
    output: &config::OutputFlags,
) -> u8 {
    let (index, count) = (stripe.index, stripe.count);
    let hash = distributed::generator::scenario_hash(&cfg, true);
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
                        "error: segment {index} of {count}: the coordinator stopped the search: {}",
                        f.aborted.as_deref().unwrap_or("no reason given")
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
        Err(capacity::SegmentedError::Dist(distributed::generator::DistError::Usage(m))) => {
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
                distributed::merge::Part::from_value(&f.display().to_string(), v)
                    .map_err(|e| e.to_string())
            });
        match part {
            Ok(p) => parts.push(p),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let merged = match distributed::merge::merge(&parts, &parsed, None) {
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
