//! A private X server for tests and benchmarks: `Xvfb` on a free display,
//! optionally with the `openbox` window manager, both killed on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, AutoRepeatMode, ChangeKeyboardControlAux, ConnectionExt as _, CreateWindowAux,
    WindowClass,
};

use super::{Conn, os_err};
use crate::PlatformError;

/// Display numbers tried by this process (parallel tests take different ones;
/// another process's server on a number makes ours exit, and we try the next).
static NEXT_DISPLAY: AtomicU32 = AtomicU32::new(90);

/// `program` on `$PATH`, if installed.
#[must_use]
pub fn find_program(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A running Xvfb (and window manager, if asked for).
pub struct Xvfb {
    display: String,
    server: Child,
    wm: Option<Child>,
}

impl Xvfb {
    /// Starts `Xvfb :N -screen 0 {width}x{height}x24` on the first free display
    /// from 90 up and waits until it accepts connections.
    pub fn start(width: u32, height: u32) -> Result<Self, PlatformError> {
        let xvfb = find_program("Xvfb")
            .ok_or_else(|| PlatformError::NoDisplay("Xvfb is not installed".into()))?;
        for _ in 0..64 {
            let n = NEXT_DISPLAY.fetch_add(1, Ordering::Relaxed);
            if std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            // -displayfd 1: the server writes the display number to stdout once it
            // is ready, or exits (closing stdout) if the display is taken.
            let mut server = Command::new(&xvfb)
                .arg(format!(":{n}"))
                .args(["-screen", "0", &format!("{width}x{height}x24")])
                .args(["-nolisten", "tcp", "-noreset", "-displayfd", "1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| PlatformError::NoDisplay(format!("cannot run Xvfb: {e}")))?;
            let mut line = String::new();
            let ready = server.stdout.take().is_some_and(|out| {
                BufReader::new(out).read_line(&mut line).is_ok() && line.trim() == n.to_string()
            });
            if ready {
                return Ok(Self {
                    display: format!(":{n}"),
                    server,
                    wm: None,
                });
            }
            stop(&mut server);
        }
        Err(PlatformError::NoDisplay(
            "no free X display number for Xvfb".into(),
        ))
    }

    /// Also runs `openbox` (an EWMH window manager) and waits until it manages
    /// the screen. Errors when openbox is not installed.
    pub fn with_window_manager(mut self) -> Result<Self, PlatformError> {
        let openbox = find_program("openbox")
            .ok_or_else(|| PlatformError::Unsupported("openbox is not installed".into()))?;
        let wm = Command::new(openbox)
            .arg("--sm-disable")
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(os_err)?;
        self.wm = Some(wm);
        // Openbox announces itself (_NET_SUPPORTING_WM_CHECK) before it manages
        // windows; wait until it has actually managed a window of ours.
        let c = Conn::open(Some(&self.display))?;
        let win = c.conn.generate_id().map_err(os_err)?;
        c.conn
            .create_window(
                0,
                win,
                c.root,
                0,
                0,
                10,
                10,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new(),
            )
            .map_err(os_err)?;
        c.conn.map_window(win).map_err(os_err)?;
        c.conn.flush().map_err(os_err)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let managed = c
                .conn
                .get_property(
                    false,
                    c.root,
                    c.atoms._NET_CLIENT_LIST,
                    AtomEnum::WINDOW,
                    0,
                    1024,
                )
                .map_err(os_err)?
                .reply()
                .map_err(os_err)?
                .value32()
                .is_some_and(|mut ids| ids.any(|w| w == win));
            if managed {
                break;
            }
            if Instant::now() > deadline {
                return Err(os_err("openbox did not manage a window within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        c.conn.destroy_window(win).map_err(os_err)?;
        c.conn.flush().map_err(os_err)?;
        Ok(self)
    }

    /// The display name, e.g. `":90"`.
    #[must_use]
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Whether a window manager runs on this server.
    #[must_use]
    pub fn has_window_manager(&self) -> bool {
        self.wm.is_some()
    }

    /// Turns keyboard auto-repeat on or off. Xvfb repeats keys held through
    /// XTest; tests that hold keys turn it off.
    pub fn set_auto_repeat(&self, on: bool) -> Result<(), PlatformError> {
        let conn = Conn::open(Some(&self.display))?;
        let mode = if on {
            AutoRepeatMode::ON
        } else {
            AutoRepeatMode::OFF
        };
        conn.conn
            .change_keyboard_control(&ChangeKeyboardControlAux::new().auto_repeat_mode(mode))
            .map_err(os_err)?
            .check()
            .map_err(os_err)?;
        conn.conn.flush().map_err(os_err)
    }
}

/// Stops a child with SIGTERM (Xvfb then removes its socket and lock file; a
/// SIGKILL would leave them behind), SIGKILL if it lingers.
fn stop(child: &mut Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::TERM,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if let Some(mut wm) = self.wm.take() {
            stop(&mut wm);
        }
        stop(&mut self.server);
    }
}
