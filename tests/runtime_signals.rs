//! SIGTERM and SIGINT in the middle of a held key: `lumine run --script`
//! releases everything in the X server and exits cleanly.
#![cfg(target_os = "linux")]

#[path = "runtime_support.rs"]
mod support;

use std::time::Duration;

use support::probe::Probe;
use support::{Lumine, assert_nothing_held, focus, xvfb};

fn signal_mid_hold(signal: &str, status: i32) {
    let x = xvfb(640, 480);
    let d = x.display();
    let probe = Probe::start(d, "Game", 320, 240);
    focus(d, probe.id);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hold.txt");
    // W and the left button held for 20 s.
    std::fs::write(
        &script,
        "0 0 0 ; W LB ; W LB ; W LB ; W LB ; W LB ; W LB\n".repeat(100),
    )
    .unwrap();
    let mark = probe.mark();
    let mut run = Lumine::spawn(
        d,
        dir.path(),
        &[
            "run",
            "--window",
            "Game",
            "--script",
            script.to_str().unwrap(),
        ],
    );
    probe.wait_for(mark, |l| l == "press W");
    std::thread::sleep(Duration::from_millis(300));
    let (keys, _) = support::server_held(d);
    assert!(!keys.is_empty(), "W is held before the signal");
    run.signal(signal);
    assert_eq!(run.wait(), Some(status), "{}", run.stderr());
    assert_nothing_held(d);
    probe.wait_for(mark, |l| l == "release W");
    assert!(
        run.stderr().contains("Stopped("),
        "a clean stop is reported: {}",
        run.stderr()
    );
}

#[test]
fn sigterm_mid_hold_releases_everything() {
    signal_mid_hold("TERM", 143);
}

#[test]
fn sigint_mid_hold_releases_everything() {
    signal_mid_hold("INT", 130);
}
