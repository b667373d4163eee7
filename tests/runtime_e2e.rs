//! `lumine run` against a real X server: a scripted run arrives in a real
//! window (the probe) with the right key pattern, timing and mouse totals;
//! focus elsewhere injects nothing; a focus change, the emergency hotkey and
//! a policy panic each leave nothing held in the server.
#![cfg(target_os = "linux")]

#[path = "runtime_support.rs"]
mod support;

use std::time::Duration;

use lumine_action::{Chunk, Key, KeyVocabulary, Turn, parse_turn, transition};
use support::probe::Probe;
use support::{Lumine, Scene, assert_nothing_held, focus, xvfb};

/// What the probe logs for a key going down or up.
fn line(key: Key, down: bool) -> String {
    let button = match key {
        Key::MouseLeft => Some(1),
        Key::MouseMiddle => Some(2),
        Key::MouseRight => Some(3),
        _ => None,
    };
    match (button, down) {
        (Some(b), true) => format!("button {b} press"),
        (Some(b), false) => format!("button {b} release"),
        (None, true) => format!("press {key}"),
        (None, false) => format!("release {key}"),
    }
}

/// The key and button lines a script must produce, each with its chunk.
fn expected(turns: &[Turn]) -> Vec<(usize, String)> {
    let mut held = Chunk::EMPTY;
    let mut out = Vec::new();
    for (s, turn) in turns.iter().enumerate() {
        let scroll = turn.action.scroll_per_chunk();
        for (i, chunk) in turn.action.chunks.iter().enumerate() {
            let c = s * 6 + i;
            let t = transition(&held, chunk);
            out.extend(t.release.iter().map(|k| (c, line(k, false))));
            out.extend(t.press.iter().map(|k| (c, line(k, true))));
            let wheel = if scroll[i] > 0 { 4 } else { 5 };
            for _ in 0..scroll[i].unsigned_abs() {
                out.push((c, format!("button {wheel} press")));
                out.push((c, format!("button {wheel} release")));
            }
            held = *chunk;
        }
    }
    out.extend(held.iter().map(|k| (turns.len() * 6, line(k, false))));
    out
}

const SCRIPT: &str = "\
10 -4 0 ; W ; W ; W ; W ; W ; W
0 0 0 ; W ; W Shift ; Shift ; ; ; F
-7 5 2 ; LB ; ; LB ; LB ; ;
93 -41 -1 ; Space ; Space ; ; A D ; A D ; A
0 0 0 ; A ; A ; A ; ; ; W
";

#[test]
fn a_script_arrives_with_the_right_keys_timing_and_motion() {
    // The probe covers the screen, so the pointer (and its buttons) are in it.
    let scene = Scene::start(640, 480);
    let (d, probe) = (scene.display(), &scene.probe);
    let mark = probe.mark();
    let mut run = scene.run_script(SCRIPT, &[]);
    assert_eq!(run.wait(), Some(0), "{}", run.stderr());
    std::thread::sleep(Duration::from_millis(100));

    let vocab = KeyVocabulary::default();
    let turns: Vec<Turn> = SCRIPT
        .lines()
        .map(|l| parse_turn(l, &vocab).unwrap())
        .collect();
    let want = expected(&turns);
    let got = probe.inputs_since(mark);
    let got_lines: Vec<&str> = got.iter().map(|(_, l)| l.as_str()).collect();
    let want_lines: Vec<&str> = want.iter().map(|(_, l)| l.as_str()).collect();
    // Held keys are not pressed again, within a step or across steps.
    assert_eq!(got_lines, want_lines, "stderr: {}", run.stderr());

    // Mouse: the raw motion the window saw sums exactly to the actions'.
    let total = turns.iter().fold((0, 0), |a, t| {
        (a.0 + i64::from(t.action.dx), a.1 + i64::from(t.action.dy))
    });
    assert_eq!(probe.raw_motion_since(mark), total);

    // Timing as the window saw it (X delivery included): each event lands
    // on its chunk's 33.3 ms boundary. Generous bound: a loaded 2-core box.
    let (t0, c0) = (got[0].0, want[0].0);
    let mut errors: Vec<i64> = got
        .iter()
        .zip(&want)
        .map(|((t, _), (c, _))| {
            let grid = (*c - c0) as i64 * 200_000 / 6;
            (t - t0 - grid).abs()
        })
        .collect();
    errors.sort_unstable();
    let p99 = errors[(errors.len() - 1) * 99 / 100];
    eprintln!(
        "events at the probe vs the grid: p50 {} us, p99 {p99} us; executor: {:?}",
        errors[errors.len() / 2],
        support::boundary_stats(&run.stderr())
    );
    assert!(p99 < 15_000, "events off the 33 ms grid by {errors:?} us");
    assert_nothing_held(d);
}

#[test]
fn focus_on_another_window_means_nothing_is_injected() {
    let x = xvfb(640, 480);
    let d = x.display();
    let target = Probe::start(d, "Target", 320, 240);
    let other = Probe::start(d, "Other", 320, 240);
    focus(d, other.id);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hold.txt");
    std::fs::write(&script, "0 0 0 ; W ; W ; W ; W ; W ; W\n".repeat(20)).unwrap();
    let (mt, mo) = (target.mark(), other.mark());
    let mut run = Lumine::spawn(
        d,
        dir.path(),
        &[
            "run",
            "--window",
            "Target",
            "--script",
            script.to_str().unwrap(),
        ],
    );
    run.wait_stderr("Paused(FocusLost)");
    std::thread::sleep(Duration::from_millis(700));
    run.signal("INT");
    assert_eq!(run.wait(), Some(130), "{}", run.stderr());
    assert_eq!(
        other.inputs_since(mo),
        [],
        "nothing reaches the focused window"
    );
    assert_eq!(target.inputs_since(mt), []);
    assert_nothing_held(d);
}

#[test]
fn a_focus_change_mid_hold_releases_everything() {
    let scene = Scene::start(320, 240);
    let d = scene.display();
    let other = Probe::start(d, "Other", 320, 240);
    focus(d, scene.probe.id);
    let mut run = scene.holding("W", &["--no-monitor"]);
    let mo = other.mark();
    focus(d, other.id);
    run.wait_stderr("Paused(FocusLost)");
    assert_nothing_held(d);
    std::thread::sleep(Duration::from_millis(300));
    // X delivers a key's release to the window focused at the time, so W's
    // release may land in the other window; a press never does.
    assert!(
        other
            .inputs_since(mo)
            .iter()
            .all(|(_, l)| l.starts_with("release")),
        "{:?}",
        other.inputs_since(mo)
    );
    run.signal("INT");
    assert_eq!(run.wait(), Some(130), "{}", run.stderr());
    assert_nothing_held(d);
}

#[test]
fn the_emergency_hotkey_stops_mid_hold() {
    let scene = Scene::start(320, 240);
    let d = scene.display();
    let mut run = scene.holding("W", &[]);
    // The operator presses the hotkey (Pause, the default).
    operator_taps(d, Key::Pause);
    assert_eq!(run.wait(), Some(3), "{}", run.stderr());
    assert!(run.stderr().contains("EmergencyStop"), "{}", run.stderr());
    assert_nothing_held(d);
}

#[test]
fn a_policy_panic_mid_hold_leaves_nothing_held() {
    use lumine_action::StreamEvent;
    use lumine_runtime::live::{self, WindowSpec};
    use lumine_runtime::policy::{Observation, Policy, PolicyError, ScriptPolicy};
    use lumine_runtime::{RunState, Runtime, RuntimeConfig, RuntimeParts};

    struct PanicsAt(ScriptPolicy, u32);
    impl Policy for PanicsAt {
        fn describe(&self) -> String {
            "panics".to_owned()
        }
        fn next_turn(
            &mut self,
            observation: &Observation<'_>,
            out: &mut dyn FnMut(StreamEvent),
        ) -> Result<Turn, PolicyError> {
            self.1 = self.1.saturating_sub(1);
            assert!(self.1 > 0, "bug in the policy");
            self.0.next_turn(observation, out)
        }
    }

    let scene = Scene::start(320, 240);
    let (d, probe) = (scene.display(), &scene.probe);
    let vocab = KeyVocabulary::default();
    let script = ScriptPolicy::parse(
        "hold",
        &"0 0 0 ; W Shift ; W Shift ; W ; W ; W ; W\n".repeat(20),
        &vocab,
    )
    .unwrap();
    let w = live::open(Some(d), &WindowSpec::Id(probe.id), None).unwrap();
    let runtime = Runtime::start(
        RuntimeParts {
            frames: w.frames,
            sink: w.sink,
            focus: Some(w.focus),
            monitor: None,
            policy: Box::new(PanicsAt(script, 4)),
            record: None,
        },
        RuntimeConfig::new(vocab),
    )
    .unwrap();
    probe.wait_for(0, |l| l == "press W");
    let summary = runtime.wait();
    assert!(
        matches!(&summary.state, RunState::Failed(m) if m.contains("bug in the policy")),
        "{summary:?}"
    );
    assert_nothing_held(d);
}

/// Presses and releases `key` through a second XTest connection: input that
/// is not ours, as the operator's keyboard would be.
fn operator_taps(display: &str, key: Key) {
    use lumine_platform::x11::keys::KeyMap;
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{KEY_PRESS_EVENT, KEY_RELEASE_EVENT};
    use x11rb::protocol::xtest::ConnectionExt as _;

    let (conn, _) = x11rb::connect(Some(display)).unwrap();
    let code = KeyMap::load(&conn).unwrap().keycode(key).unwrap();
    for kind in [KEY_PRESS_EVENT, KEY_RELEASE_EVENT] {
        conn.xtest_fake_input(kind, code, 0, x11rb::NONE, 0, 0, 0)
            .unwrap();
        conn.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn operator_input_takes_over_and_the_agent_resumes_after_the_idle_time() {
    let scene = Scene::start(320, 240);
    let (d, probe) = (scene.display(), &scene.probe);
    std::fs::write(
        scene.dir.path().join("config.ron"),
        "(takeover_idle_ms: 700)\n",
    )
    .unwrap();
    let mut run = scene.holding("W", &[]);
    let mark = probe.mark();
    operator_taps(d, Key::A);
    run.wait_stderr("state: OperatorControl");
    probe.wait_for(mark, |l| l == "release W");
    std::thread::sleep(Duration::from_millis(100));
    assert_nothing_held(d);
    // The agent stays out while the operator is active, then takes over again.
    let quiet = probe.mark();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        probe.inputs_since(quiet).is_empty(),
        "{:?}",
        probe.inputs_since(quiet)
    );
    run.wait_stderr("state: Running");
    probe.wait_for(quiet, |l| l == "press W");
    run.signal("INT");
    assert_eq!(run.wait(), Some(130), "{}", run.stderr());
    assert_nothing_held(d);
}

#[test]
fn a_window_that_disappears_pauses_the_run_without_a_crash() {
    let scene = Scene::start(320, 240);
    let d = scene.display().to_owned();
    let d = d.as_str();
    let mut run = scene.holding("W", &["--no-monitor"]);
    drop(scene.probe);
    run.wait_stderr("state: Paused(");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(run.child.try_wait(), Ok(None)),
        "still running, paused"
    );
    assert_nothing_held(d);
    run.signal("INT");
    assert_eq!(run.wait(), Some(130), "{}", run.stderr());
}
