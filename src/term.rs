//! The terminal: whether a stream is one, how wide it is, whether to colour it, and the live
//! area at the bottom of stderr that the progress view redraws and log lines are printed above.
//!
//! A leaf module: it imports no other stampede module. It also holds the small text helpers
//! that fit things into columns ([`abbreviate`], [`abbreviate_end`], [`host_port`]). Nothing here runs per request: the live
//! area's mutex is taken only by the display loop (a few times a second) and by log events.
//!
//! - Colour: only on a terminal, never when `NO_COLOR` is set (non-empty, <https://no-color.org>)
//!   or `TERM=dumb`.
//! - Width: `ioctl(TIOCGWINSZ)` on the stream when it is a terminal, else `COLUMNS`, else the
//!   caller's default; text for a stream that is no terminal ([`text_width`]) takes the
//!   width of a terminal on stderr, else at least 120 columns.
//! - Live area: [`show`] replaces the lines at the bottom of stderr (erasing the previous ones
//!   with cursor-up + erase-line), [`print_above`] and [`LogWriter`] erase them, print, and
//!   redraw, so logs never glue onto the progress line; [`hide`] erases them for good.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard};

/// One of the two output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output (the summary).
    Stdout,
    /// Standard error (banner, progress, status lines, logs).
    Stderr,
}

impl Stream {
    /// Whether the stream is a terminal.
    pub(crate) fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    #[cfg(unix)]
    fn fd(self) -> libc::c_int {
        match self {
            Stream::Stdout => libc::STDOUT_FILENO,
            Stream::Stderr => libc::STDERR_FILENO,
        }
    }
}

/// Columns of the terminal behind `stream`; when it is not a terminal (or the size is
/// unknown), the `COLUMNS` environment variable; else `None`.
pub(crate) fn width(stream: Stream) -> Option<usize> {
    if stream.is_terminal()
        && let Some((cols, _)) = window_size(stream)
    {
        return Some(cols);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
}

/// Columns assumed for text that goes to no terminal (a CI log, a file), where nothing wraps:
/// room for the summary's table with every column.
pub(crate) const PIPED_MIN_WIDTH: usize = 120;

/// The width to fit text for `stream` in: its terminal's; else, when stderr is a terminal
/// (`stampede run | tee run.log`), the width of the terminal a person is watching; else
/// `COLUMNS`, but at least [`PIPED_MIN_WIDTH`].
pub(crate) fn text_width(stream: Stream) -> usize {
    for s in [stream, Stream::Stderr] {
        if s.is_terminal()
            && let Some((cols, _)) = window_size(s)
        {
            return cols;
        }
    }
    width(stream).unwrap_or(0).max(PIPED_MIN_WIDTH)
}

/// Rows of the terminal behind `stream`, if it is one.
pub(crate) fn height(stream: Stream) -> Option<usize> {
    if stream.is_terminal() {
        window_size(stream).map(|(_, rows)| rows).filter(|r| *r > 0)
    } else {
        None
    }
}

#[cfg(unix)]
fn window_size(stream: Stream) -> Option<(usize, usize)> {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ only writes a winsize into the struct we pass, and the descriptor is
    // one of the process's standard streams.
    let r = unsafe { libc::ioctl(stream.fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some((usize::from(ws.ws_col), usize::from(ws.ws_row)))
}

#[cfg(not(unix))]
fn window_size(_: Stream) -> Option<(usize, usize)> {
    None
}

/// Whether output to `stream` may be coloured: a terminal, `NO_COLOR` unset or empty, and
/// `TERM` not `dumb`.
pub(crate) fn colour(stream: Stream) -> bool {
    stream.is_terminal()
        && colour_allowed_by(
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
}

fn colour_allowed_by(no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// Colours text with ANSI SGR codes, or leaves it alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Paint {
    /// Whether to emit escape codes at all.
    pub on: bool,
}

impl Paint {
    fn sgr(self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Green (passed).
    pub(crate) fn green(self, s: &str) -> String {
        self.sgr("32", s)
    }

    /// Red (failed, crossed).
    pub(crate) fn red(self, s: &str) -> String {
        self.sgr("31", s)
    }
}

/// The lines currently drawn at the bottom of stderr.
struct LiveArea {
    lines: Vec<String>,
    /// How many of them are on screen (0: nothing drawn).
    drawn: usize,
}

static AREA: Mutex<LiveArea> = Mutex::new(LiveArea {
    lines: Vec::new(),
    drawn: 0,
});

fn area() -> MutexGuard<'static, LiveArea> {
    // A panic while holding it leaves plain strings behind: still usable.
    AREA.lock().unwrap_or_else(|e| e.into_inner())
}

impl LiveArea {
    /// Escape codes that erase what is drawn and leave the cursor at the start of its first
    /// line. The cursor sits at the end of the last line (no newline after it).
    fn erase(&mut self, out: &mut String) {
        if self.drawn == 0 {
            return;
        }
        out.push_str("\r\x1b[2K");
        for _ in 1..self.drawn {
            out.push_str("\x1b[1A\x1b[2K");
        }
        self.drawn = 0;
    }

    fn paint(&mut self, out: &mut String) {
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(l);
        }
        self.drawn = self.lines.len();
    }
}

fn write_stderr(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

/// Replaces the live area with `lines` (each must fit the terminal's width, or the erase on
/// the next redraw misses the wrapped part). One write per redraw, so it does not flicker.
pub(crate) fn show(lines: Vec<String>) {
    let mut a = area();
    let mut out = String::new();
    a.erase(&mut out);
    a.lines = lines;
    a.paint(&mut out);
    write_stderr(&out);
}

/// Erases the live area and forgets it.
pub(crate) fn hide() {
    let mut a = area();
    let mut out = String::new();
    a.erase(&mut out);
    a.lines.clear();
    write_stderr(&out);
}

/// Prints `text` on stderr above the live area (a newline is added if missing), then redraws
/// the live area under it. Without a live area, it is a plain write.
pub(crate) fn print_above(text: &str) {
    let mut a = area();
    let mut out = String::new();
    a.erase(&mut out);
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
    a.paint(&mut out);
    write_stderr(&out);
}

/// A `tracing` writer for stderr that prints each log event above the live area.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LogWriter;

/// One log event being formatted; printed when dropped.
#[derive(Debug, Default)]
pub(crate) struct LogLine {
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            print_above(&String::from_utf8_lossy(&self.buf));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine::default()
    }
}

/// `s` shortened to at most `max` characters, with `…` in the middle (names and URLs differ
/// at both ends).
pub(crate) fn abbreviate(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max <= 1 {
        return "…".chars().take(max).collect();
    }
    let keep = max - 1;
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(n - tail));
    out
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn abbreviate_end(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        out.push('…');
    }
    out
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_and_dumb_terminals_turn_colour_off() {
        assert!(colour_allowed_by(None, Some(OsStr::new("xterm-256color"))));
        assert!(colour_allowed_by(Some(OsStr::new("")), None));
        assert!(!colour_allowed_by(Some(OsStr::new("1")), None));
        assert!(!colour_allowed_by(None, Some(OsStr::new("dumb"))));
    }

    #[test]
    fn paint_off_emits_no_escape_codes() {
        let off = Paint { on: false };
        assert_eq!(off.red("✗"), "✗");
        let on = Paint { on: true };
        assert_eq!(on.green("✓"), "\x1b[32m✓\x1b[0m");
    }

    #[test]
    fn abbreviate_keeps_both_ends() {
        assert_eq!(abbreviate("/short", 10), "/short");
        assert_eq!(
            abbreviate("/newsql/api/getTablesByAppId", 15),
            "/newsql…ByAppId"
        );
        assert_eq!(
            abbreviate("/newsql/api/getTablesByAppId", 15)
                .chars()
                .count(),
            15
        );
        assert_eq!(abbreviate("abcdef", 1), "…");
        assert_eq!(abbreviate_end("abcdef", 4), "abc…");
        assert_eq!(abbreviate_end("abc", 4), "abc");
        assert_eq!(host_port("::1", 8080), "[::1]:8080");
        assert_eq!(host_port("127.0.0.1", 80), "127.0.0.1:80");
    }

    #[test]
    fn the_live_area_erases_exactly_what_it_drew() {
        let mut a = LiveArea {
            lines: vec!["one".into(), "two".into()],
            drawn: 0,
        };
        let mut out = String::new();
        a.erase(&mut out);
        assert_eq!(out, "", "nothing drawn, nothing erased");
        a.paint(&mut out);
        assert_eq!(out, "one\ntwo");
        out.clear();
        a.erase(&mut out);
        assert_eq!(out, "\r\x1b[2K\x1b[1A\x1b[2K");
        assert_eq!(a.drawn, 0);
    }
}
