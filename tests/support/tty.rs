//! A pseudo-terminal of a fixed size: a command run in a private tmux server, its screen read
//! back with `capture-pane`.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server on a private socket running one command in a `width` × `height` pane; the
/// server is killed on drop.
pub struct Tty {
    socket: String,
}

fn tmux() -> Command {
    if Command::new("tmux").arg("-V").output().is_err() {
        panic!(
            "tmux is not installed: run `apt-get install -y tmux` (the README's test command does)"
        );
    }
    Command::new("tmux")
}

impl Tty {
    /// Starts `shell_command` (run by `sh -c`) in a fresh terminal of `width` × `height`.
    pub fn start(width: u16, height: u16, shell_command: &str) -> Tty {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let socket = format!(
            "stampede-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let o = tmux()
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(shell_command)
            .output()
            .expect("start tmux");
        assert!(
            o.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tty { socket }
    }

    /// The screen and its scrollback, wrapped lines joined back (`-J`), so a line longer than
    /// the terminal shows as one long line. With `escapes`, colours are kept as ANSI codes.
    pub fn capture(&self, escapes: bool) -> String {
        let mut c = tmux();
        c.args(["-L", &self.socket, "capture-pane", "-p", "-J", "-S", "-"]);
        if escapes {
            c.arg("-e");
        }
        let o = c.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Captures every `every` until `done` holds for a capture or `timeout` passes; returns
    /// every capture taken, the last one first checked by `done`.
    pub fn watch(
        &self,
        every: Duration,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let start = Instant::now();
        let mut shots = Vec::new();
        loop {
            let s = self.capture(false);
            let finished = done(&s);
            shots.push(s);
            if finished {
                return shots;
            }
            assert!(
                start.elapsed() < timeout,
                "the command did not finish within {timeout:?}; last screen:\n{}",
                shots.last().map(String::as_str).unwrap_or_default()
            );
            std::thread::sleep(every);
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
