//! SIGTERM and SIGINT in the middle of a held key: `lumine run --script`
//! releases everything in the X server and exits cleanly.
#![cfg(target_os = "linux")]

#[path = "runtime_support.rs"]
mod support;

use std::time::Duration;

use support::{Scene, assert_nothing_held};

fn signal_mid_hold(signal: &str, status: i32) {
    let scene = Scene::start(320, 240);
    let (d, probe) = (scene.display(), &scene.probe);
    let mark = probe.mark();
    // W and the left button held for 20 s.
    let mut run = scene.holding("W LB", &[]);
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
