//! A `lumine-xprobe` window under test and the lines it logged. Shared, by
//! `#[path]`, between this crate's X11 tests and the workspace's end-to-end
//! tests; the including module provides `xprobe_bin()` (where the probe
//! binary is, which each of them learns differently).

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumine_platform::WindowId;

/// How long [`Probe::wait_for`] waits for a line.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// A running probe window and what it logged: (CLOCK_MONOTONIC µs, event).
pub struct Probe {
    child: Child,
    /// The probe's X window.
    pub id: WindowId,
    lines: Arc<Mutex<Vec<(i64, String)>>>,
}

impl Probe {
    /// Opens a probe window titled `title` on `display` and waits until it is mapped.
    pub fn start(display: &str, title: &str, width: u16, height: u16) -> Probe {
        let mut child = Command::new(super::xprobe_bin())
            .args(["--display", display, "--title", title])
            .args([
                "--width",
                &width.to_string(),
                "--height",
                &height.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run lumine-xprobe");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&lines);
        std::thread::Builder::new()
            .name(format!("probe-{title}"))
            .spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    // "<microseconds> <event...>"
                    let (t, event) = line.split_once(' ').unwrap_or(("0", &line));
                    let t = t.parse().unwrap_or(0);
                    sink.lock().unwrap().push((t, event.to_owned()));
                }
            })
            .unwrap();
        let mut probe = Probe {
            child,
            id: WindowId(0),
            lines,
        };
        let ready = probe.wait_for(0, |l| l.starts_with("ready "));
        let hex = ready.trim_start_matches("ready 0x");
        let hex = hex.split_whitespace().next().unwrap();
        probe.id = WindowId(u64::from_str_radix(hex, 16).unwrap());
        probe
    }

    /// Number of lines so far (a mark for the `*_since` methods).
    pub fn mark(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Lines after `mark`, with their times.
    pub fn since_timed(&self, mark: usize) -> Vec<(i64, String)> {
        self.lines.lock().unwrap()[mark..].to_vec()
    }

    /// Lines after `mark`.
    pub fn since(&self, mark: usize) -> Vec<String> {
        self.since_timed(mark).into_iter().map(|(_, l)| l).collect()
    }

    /// Input lines after `mark` (focus changes arrive whenever they like).
    pub fn input_since(&self, mark: usize) -> Vec<String> {
        let mut lines = self.since(mark);
        lines.retain(|l| !l.starts_with("focus "));
        lines
    }

    /// Key and button lines after `mark` (`press W`, `button 1 press`), timed.
    pub fn inputs_since(&self, mark: usize) -> Vec<(i64, String)> {
        self.since_timed(mark)
            .into_iter()
            .filter(|(_, l)| {
                l.starts_with("press ") || l.starts_with("release ") || l.starts_with("button ")
            })
            .collect()
    }

    /// Sum of raw motion after `mark`.
    pub fn raw_motion_since(&self, mark: usize) -> (i64, i64) {
        self.since(mark)
            .iter()
            .filter_map(|l| l.strip_prefix("raw "))
            .map(|xy| {
                let mut it = xy.split_whitespace().map(|v| v.parse::<i64>().unwrap());
                (it.next().unwrap(), it.next().unwrap())
            })
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Waits for a line after `mark` matching `pred`; panics after [`PROBE_TIMEOUT`].
    pub fn wait_for(&self, mark: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PROBE_TIMEOUT;
        loop {
            if let Some(l) = self.since(mark).into_iter().find(|l| pred(l)) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "probe never logged the expected line; after the mark it logged {:?} (all: {:?})",
                self.since(mark),
                self.since(0)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for exactly `line` after `mark`.
    pub fn wait_line(&self, mark: usize, line: &str) {
        self.wait_for(mark, |l| l == line);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
