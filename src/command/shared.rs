//! What every command shares, below the dispatch in `lib.rs`: the exit codes and the error at
//! the edge, presentation options, the checks that turn a configuration into a plan
//! ([`prepare`]), one run from configuration to printed summary ([`run_one`]), run ids, and the
//! process's command line for the summary's `meta`.

use std::sync::OnceLock;

use crate::report::summary::Summary;
use crate::report::{ci, summary};
use crate::scenario::{plan, template};
use crate::{config, export, run};

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
/// Exit code: the run was otherwise a success, but with `--fail-on-export-error`
/// (`[run] fail_on_export_error`) an exporter delivered less than everything.
pub const EXIT_EXPORT: u8 = 5;
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

/// The exit code a summary calls for: 3 (a threshold crossed) before 130 (interrupted)
/// before 5 (`--fail-on-export-error` and an incomplete export) before 0.
pub fn summary_exit_code(s: &Summary) -> u8 {
    if s.thresholds.iter().any(|t| !t.ok) || s.aborted.is_some() {
        EXIT_THRESHOLDS
    } else if s.interrupted {
        EXIT_INTERRUPTED
    } else {
        export_exit_code(s, EXIT_OK)
    }
}

/// `code`, or 5 when it is 0 and `s` asks for its incomplete export to fail the run.
pub(crate) fn export_exit_code(s: &Summary, code: u8) -> u8 {
    if code == EXIT_OK && s.fail_on_export_error && s.export_incomplete() {
        EXIT_EXPORT
    } else {
        code
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

/// Runs an already merged configuration as one run (not a capacity search: see
/// `crate::run_config`), prints its text summary and writes `--summary-json`.
pub(crate) fn run_one(
    cfg: config::Config,
    origin: &str,
    presentation: Presentation,
) -> Result<Summary, Error> {
    let run_id = cfg.run.id.clone().unwrap_or_else(generate_run_id);
    let quiet = cfg.run.quiet;
    let status_interval = cfg.run.status_interval.get();
    let config_json = summary::redacted_config(&cfg);
    let plan = prepare(cfg, run_id, origin)?;
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
        m.command_line = summary::redacted_args(command_line());
    }
    if presentation.print {
        print!(
            "{}",
            summary::render_text(&summary, &summary::TextStyle::for_stdout())
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

/// The command line of this process, for the summary's `meta`.
static COMMAND_LINE: OnceLock<Vec<String>> = OnceLock::new();

/// Records the process's command line (once, by `main_with_args`).
pub(crate) fn set_command_line(args: Vec<String>) {
    let _ = COMMAND_LINE.set(args);
}

/// The process's command line, as recorded (empty when not run from `main_with_args`).
pub(crate) fn command_line() -> &'static [String] {
    COMMAND_LINE.get().map_or(&[], Vec::as_slice)
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
