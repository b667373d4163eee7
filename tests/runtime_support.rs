//! Shared by the runtime's end-to-end tests (`#[path]`-included): a private X
//! server, probe windows that log what they receive, the `lumine` binary,
//! and what the X server says is held.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumine_platform::WindowId;
use lumine_platform::x11::xvfb::Xvfb;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;

pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A fresh Xvfb with auto-repeat off (keys held through XTest would repeat).
pub fn xvfb(width: u32, height: u32) -> Xvfb {
    let x = Xvfb::start(width, height).expect("Xvfb must be installed (scripts/setup) and start");
    x.set_auto_repeat(false).expect("auto-repeat off");
    x
}

/// A probe window named "Game" on a private 640x480 Xvfb, focused, and a
/// scratch folder for `lumine`'s config and files: the set-up of most runs.
pub struct Scene {
    /// The window the runs inject into (dropped before its server).
    pub probe: probe::Probe,
    /// Scratch folder: `config.ron`, scripts, recordings.
    pub dir: tempfile::TempDir,
    x: Xvfb,
}

impl Scene {
    /// A `width`x`height` probe named "Game", focused.
    pub fn start(width: u16, height: u16) -> Scene {
        let x = xvfb(640, 480);
        let probe = probe::Probe::start(x.display(), "Game", width, height);
        focus(x.display(), probe.id);
        let dir = tempfile::tempdir().unwrap();
        Scene { probe, dir, x }
    }

    /// The X display.
    pub fn display(&self) -> &str {
        self.x.display()
    }

    /// `lumine ARGS` on this display, its config in the scratch folder.
    pub fn lumine(&self, args: &[&str]) -> Lumine {
        Lumine::spawn(self.display(), self.dir.path(), args)
    }

    /// `lumine run --window Game --script FILE EXTRA`, FILE holding `script`.
    pub fn run_script(&self, script: &str, extra: &[&str]) -> Lumine {
        let path = self.dir.path().join("script.txt");
        std::fs::write(&path, script).unwrap();
        let mut args = vec![
            "run",
            "--window",
            "Game",
            "--script",
            path.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        self.lumine(&args)
    }

    /// A script holding `keys` (e.g. "W LB") in every chunk for 20 s, once
    /// W is down in the probe.
    pub fn holding(&self, keys: &str, extra: &[&str]) -> Lumine {
        let mark = self.probe.mark();
        let line = format!("0 0 0{}\n", format!(" ; {keys}").repeat(6));
        let run = self.run_script(&line.repeat(100), extra);
        self.probe.wait_for(mark, |l| l == "press W");
        run
    }
}

/// `lumine-xprobe`, built next to `lumine`.
pub fn xprobe_bin() -> PathBuf {
    let bin = lumine_tests::lumine_bin().with_file_name("lumine-xprobe");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build -p lumine-platform --bins`",
        bin.display()
    );
    bin
}

/// The probe window (`lumine-xprobe`), shared with lumine-platform's X11 tests.
#[path = "../app/platform/tests/support/probe.rs"]
pub mod probe;

/// Gives `id` the keyboard focus (no window manager: `SetInputFocus`).
pub fn focus(display: &str, id: WindowId) {
    lumine_platform::x11::focus_window(Some(display), id).expect("focus the window");
}

/// Keycodes and pointer buttons the X server holds down now.
pub fn server_held(display: &str) -> (Vec<u8>, Vec<u8>) {
    let (conn, screen) = x11rb::connect(Some(display)).unwrap();
    let root = conn.setup().roots[screen].root;
    let keys = conn.query_keymap().unwrap().reply().unwrap().keys;
    let codes = (0..=255u8)
        .filter(|&c| keys[usize::from(c) / 8] & (1 << (c % 8)) != 0)
        .collect();
    let mask = u16::from(conn.query_pointer(root).unwrap().reply().unwrap().mask);
    let buttons = (1..=5u8).filter(|b| mask & (1 << (7 + b)) != 0).collect();
    (codes, buttons)
}

/// Asserts the X server holds no key and no button (allowing the executor the
/// couple of milliseconds it may take after the state change was reported).
pub fn assert_nothing_held(display: &str) {
    let deadline = Instant::now() + Duration::from_millis(200);
    loop {
        let (keys, buttons) = server_held(display);
        if keys.is_empty() && buttons.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the X server still holds keycodes {keys:?} and buttons {buttons:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A `lumine` process on `display` with its own configuration file; stdout
/// and stderr collected.
pub struct Lumine {
    pub child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Lumine {
    pub fn spawn(display: &str, config_dir: &Path, args: &[&str]) -> Lumine {
        Lumine::spawn_env(&lumine_tests::lumine_bin(), display, config_dir, args, &[])
    }

    /// As [`Lumine::spawn`], with this binary and extra environment variables.
    pub fn spawn_env(
        bin: &Path,
        display: &str,
        config_dir: &Path,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Lumine {
        let mut child = Command::new(bin)
            .args(args)
            // The repository root: where a user runs it, and where the bundled
            // model is found when the binary lives in another target folder.
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("DISPLAY", display)
            .env("LUMINE_CONFIG", config_dir.join("config.ron"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run lumine");
        let collect = |mut pipe: Box<dyn Read + Send>, name: &str| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = pipe.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        sink.lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&buf[..n]));
                    }
                })
                .unwrap();
            text
        };
        let out = collect(Box::new(child.stdout.take().unwrap()), "lumine-stdout");
        let err = collect(Box::new(child.stderr.take().unwrap()), "lumine-stderr");
        Lumine { child, out, err }
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str) {
        self.wait_stderr_count(needle, 1, TIMEOUT);
    }

    /// Waits until stderr contains `needle` at least `count` times.
    pub fn wait_stderr_count(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stderr().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "lumine never printed {needle:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit status (panics after the timeout).
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT * 2;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the pipe readers finish.
                std::thread::sleep(Duration::from_millis(50));
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "lumine did not exit; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Lumine {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// p50, p99 and max of the chunk boundary error the run printed, µs.
pub fn boundary_stats(stderr: &str) -> Option<(i64, i64, i64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains("chunk boundary error"))?;
    let grab = |key: &str| -> Option<i64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    Some((grab("p50")?, grab("p99")?, grab("max")?))
}
