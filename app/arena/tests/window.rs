//! The arena window under Xvfb, played with lumine-platform's real X11
//! injector (XTest keys, relative pointer motion): the state it reports
//! follows the input.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use lumine_action::Key;
use lumine_arena::window::{self, StateOut, WindowOptions};
use lumine_arena::world::{Input, State, TaskKind, World};
use lumine_platform::x11::XTestSink;
use lumine_platform::x11::xvfb::Xvfb;
use lumine_platform::{InjectOutcome, InputOp, InputSink, WindowId};

const SEED: u64 = 31;
const TASK: TaskKind = TaskKind::Guard;

fn states(path: &std::path::Path) -> Vec<State> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_state(path: &std::path::Path, what: &str, pred: impl Fn(&State) -> bool) -> State {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = states(path).into_iter().rev().find(|s| pred(s)) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inject(sink: &mut XTestSink, ops: &[InputOp]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match sink.inject(ops).expect("inject") {
            InjectOutcome::Injected => return,
            _ => {
                assert!(Instant::now() < deadline, "the arena never had the focus");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn keys_and_relative_mouse_motion_move_and_turn_the_player() {
    // A turn (pixels) after which walking forward for half a second on this
    // layout is free: found headless, on the same world.
    let turn_px = (0..20)
        .map(|i| f64::from(i) * 90.0)
        .find(|&px| {
            let mut w = World::new(SEED, Some(TASK)).unwrap();
            let p0 = w.position();
            w.step(
                &Input {
                    keys: vec![],
                    mouse_dx: px,
                    mouse_dy: 0.0,
                },
                0.0,
            );
            w.step(
                &Input {
                    keys: vec![Key::W],
                    mouse_dx: 0.0,
                    mouse_dy: 0.0,
                },
                0.5,
            );
            (w.position().0 - p0.0).hypot(w.position().1 - p0.1) > 0.9
        })
        .expect("a free direction");
    let xvfb = Xvfb::start(1280, 720).expect("Xvfb must be installed and start");
    xvfb.set_auto_repeat(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("state.jsonl");
    let options = WindowOptions {
        display: Some(xvfb.display().to_owned()),
        seed: SEED,
        task: Some(TASK),
        state_out: Some(StateOut::File(out.clone())),
        max_seconds: Some(30.0),
        ..WindowOptions::default()
    };
    let arena = std::thread::Builder::new()
        .name("arena-window".into())
        .spawn(move || window::run(&options))
        .unwrap();
    let first = wait_state(&out, "the first state", |s| s.window.is_some());
    let id = WindowId(first.window.unwrap());
    let mut sink = XTestSink::connect(Some(xvfb.display()), id).unwrap();
    // Turn: raw relative motion, whatever the pointer's position.
    inject(
        &mut sink,
        &[InputOp::MoveRelative {
            dx: turn_px as i32,
            dy: 0,
        }],
    );
    let expected = (first.heading_deg + turn_px * 0.2 + 540.0).rem_euclid(360.0) - 180.0;
    let turned = wait_state(&out, "the turn", |s| {
        let d = (s.heading_deg - expected + 540.0).rem_euclid(360.0) - 180.0;
        d.abs() < 1e-6
    });
    assert_eq!(
        (turned.x, turned.y),
        (first.x, first.y),
        "turning does not move"
    );
    // Walk: W held for about half a second.
    inject(&mut sink, &[InputOp::Press(Key::W)]);
    std::thread::sleep(Duration::from_millis(500));
    inject(&mut sink, &[InputOp::Release(Key::W)]);
    let moved = wait_state(&out, "the walk", |s| {
        (s.x - first.x).hypot(s.y - first.y) > 0.5
    });
    // Forward is where the view points.
    let heading = moved.heading_deg.to_radians();
    let along = (moved.x - first.x) * heading.cos() + (moved.y - first.y) * heading.sin();
    assert!(along > 0.5, "moved {along} cells forward");
    drop(sink);
    drop(xvfb); // the window's connection ends, and with it the arena
    let last = arena.join().unwrap();
    // The server going away ends the window loop (or it errors out): either is fine.
    let _ = last;
}
