//! The console binary on a real X server: it opens at 1600x900 on its first
//! run, starts the embedded default by itself (the practice arena played by
//! the bundled model), shows it, and closing the window stops the agent with
//! nothing held. The screenshot is kept as an artifact.

#![cfg(target_os = "linux")]

#[path = "runtime_support.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use lumine_platform::x11::{X11Capture, X11Windows};
use lumine_platform::{FrameSource as _, WindowSystem as _};
use support::{Lumine, assert_nothing_held, xvfb};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};

/// Where the screenshot goes: `$LUMINE_ARTIFACTS`, else `target/artifacts`.
fn artifacts_dir() -> PathBuf {
    std::env::var_os("LUMINE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/artifacts"),
        PathBuf::from,
    )
}

/// Asks the window to close as a window manager would (WM_DELETE_WINDOW).
fn request_close(display: &str, window: u32) {
    let (conn, _) = x11rb::connect(Some(display)).expect("connect");
    let atom = |name: &str| {
        conn.intern_atom(false, name.as_bytes())
            .expect("intern")
            .reply()
            .expect("atom")
            .atom
    };
    let protocols = atom("WM_PROTOCOLS");
    let delete = atom("WM_DELETE_WINDOW");
    let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
    conn.send_event(false, window, EventMask::NO_EVENT, event)
        .expect("send")
        .check()
        .expect("the server took the event");
    conn.flush().expect("flush");
}

#[test]
fn console_plays_the_embedded_default_and_closing_releases_everything() {
    let x = xvfb(1600, 900);
    let display = x.display().to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("console.ron");
    // No settings file: the console's first run, which starts by itself.
    let mut lumine = Lumine::spawn_env(
        &lumine_tests::lumine_release_bin(),
        &display,
        dir.path(),
        &["console", "--size", "1600x900"],
        &[("LUMINE_CONSOLE_SETTINGS", settings.as_os_str())],
    );
    // The bundled model plays the arena: steps decided and chunks played.
    lumine.wait_stderr_count(" Agent first chunk", 15, Duration::from_secs(120));
    assert!(
        lumine.stderr().contains("on \"Lumine Arena\""),
        "{}",
        lumine.stderr()
    );

    let mut windows = X11Windows::connect(Some(&display)).expect("windows");
    let console = windows.find("Lumine Console").expect("the console window");
    assert_eq!((console.width, console.height), (1600, 900));
    // The capture redirects the window while it lives: take one frame and
    // let go, so the console presents as usual again.
    let shot = X11Capture::new(Some(&display), console.id)
        .expect("capture")
        .capture()
        .expect("screenshot");
    let dir_out = artifacts_dir();
    std::fs::create_dir_all(&dir_out).expect("artifacts dir");
    let path = dir_out.join("console-e2e.png");
    image::save_buffer(
        &path,
        &shot.rgb,
        shot.width,
        shot.height,
        image::ExtendedColorType::Rgb8,
    )
    .expect("screenshot saved");
    eprintln!("screenshot: {}", path.display());

    // Not blank: many colours, and the live view (arena pixels) is in it.
    let mut colours: Vec<[u8; 3]> = shot
        .rgb
        .chunks_exact(3)
        .step_by(7)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "only {} colours: blank?",
        colours.len()
    );

    // Closing the window stops the agent and releases every key.
    eprintln!("closing window {:#x}", console.id.0);
    request_close(&display, u32::try_from(console.id.0).expect("x11 id"));
    let code = lumine.wait();
    let stderr = lumine.stderr();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Stopped(Command)"), "{stderr}");
    assert!(stderr.contains("chunks played"), "{stderr}");
    assert_nothing_held(&display);
}
