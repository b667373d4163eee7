//! Every way a run can be interrupted leaves nothing held: a policy panic,
//! focus moving away, the emergency hotkey, a stop command, operator
//! takeover; and focus elsewhere means nothing is injected.

mod support;

use std::time::Duration;

use lumine_action::Key;
use lumine_platform::{InputOp, OperatorEvent};
use lumine_runtime::{Command, EventKind, PauseReason, RunState, StopReason};
use support::{Faulty, Harness, config, events_until, is_state, run_to_end, script};

const HOLD_W: &str = "0 0 0 ; W ; W ; W ; W ; W ; W\n";

/// Waits until W is held (the run is mid-hold).
fn wait_for_w(h: &Harness) {
    for _ in 0..200 {
        if h.held().contains(&Key::W) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("W never went down");
}

/// Waits (briefly) until nothing is held: the executor releases within a
/// couple of milliseconds of a state change, which may be reported first.
fn released_soon(h: &Harness) -> bool {
    for _ in 0..50 {
        if h.held().is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn a_policy_panic_releases_everything_and_fails_the_run() {
    let h = Harness::new();
    let mut policy = Faulty::new(script(&HOLD_W.repeat(10)));
    policy.panic_at = Some(3);
    let (summary, events) = run_to_end(h.start(Box::new(policy), config()));
    let RunState::Failed(message) = &summary.state else {
        panic!("{summary:?}")
    };
    assert!(message.contains("policy bug at call 3"), "{message}");
    assert!(h.held().is_empty());
    // The final state is reported after the release.
    let last_state = events
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EventKind::State(_)))
        .unwrap();
    assert!(is_state(last_state, |s| matches!(s, RunState::Failed(_))));
    assert_eq!(h.key_ops().last(), Some(&InputOp::Release(Key::W)));
}

#[test]
fn focus_loss_pauses_releases_and_injects_nothing_until_focus_returns() {
    let h = Harness::new();
    let runtime = h.start(script(&HOLD_W.repeat(30)), config());
    wait_for_w(&h);
    h.set_unfocused(true);
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Paused(PauseReason::FocusLost))
    });
    assert!(released_soon(&h), "released on focus loss");
    let ops_at_pause = h.sink.log.lock().unwrap().ops.len();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        h.sink.log.lock().unwrap().ops.len(),
        ops_at_pause,
        "nothing injected while another window has focus"
    );
    h.set_unfocused(false);
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Running)
    });
    wait_for_w(&h);
    runtime.commands().send(Command::Stop).unwrap();
    let (summary, _) = run_to_end(runtime);
    assert_eq!(summary.state, RunState::Stopped(StopReason::Command));
    assert!(h.held().is_empty());
}

#[test]
fn the_emergency_hotkey_stops_mid_hold() {
    let h = Harness::new();
    let runtime = h.start(script(&HOLD_W.repeat(30)), config());
    wait_for_w(&h);
    h.monitor.send(OperatorEvent::EmergencyStop);
    let (summary, _) = run_to_end(runtime);
    assert_eq!(summary.state, RunState::Stopped(StopReason::EmergencyStop));
    assert!(h.held().is_empty());
}

#[test]
fn the_emergency_stop_lands_while_the_policy_is_busy() {
    let h = Harness::new();
    let mut policy = Faulty::new(script(&HOLD_W.repeat(30)));
    policy.sleep_at = Some((3, Duration::from_secs(3)));
    let runtime = h.start(Box::new(policy), config());
    // Step 2 is held while the policy sleeps on step 3.
    std::thread::sleep(Duration::from_millis(520));
    runtime.commands().send(Command::EmergencyStop).unwrap();
    let t = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(20));
    assert!(h.held().is_empty(), "released within 20 ms of the stop");
    let (summary, _) = run_to_end(runtime);
    assert_eq!(summary.state, RunState::Stopped(StopReason::EmergencyStop));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn operator_input_takes_over_and_the_agent_resumes_when_idle() {
    let h = Harness::new();
    let mut cfg = config();
    cfg.takeover_idle = Duration::from_millis(400);
    let runtime = h.start(script(&HOLD_W.repeat(40)), cfg);
    wait_for_w(&h);
    h.monitor.send(OperatorEvent::Press(Key::A));
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::OperatorControl)
    });
    assert!(released_soon(&h), "the agent yields at once");
    let ops = h.sink.log.lock().unwrap().ops.len();
    std::thread::sleep(Duration::from_millis(200));
    h.monitor.send(OperatorEvent::Release(Key::A));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        h.sink.log.lock().unwrap().ops.len(),
        ops,
        "silent while the operator acts"
    );
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Running)
    });
    wait_for_w(&h);
    runtime.commands().send(Command::Stop).unwrap();
    let (_, _) = run_to_end(runtime);
    assert!(h.held().is_empty());
}

#[test]
fn take_control_and_hand_back_by_command() {
    let h = Harness::new();
    let mut cfg = config();
    cfg.takeover_idle = Duration::from_millis(50);
    let runtime = h.start(script(&HOLD_W.repeat(40)), cfg);
    wait_for_w(&h);
    runtime.commands().send(Command::TakeControl).unwrap();
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::OperatorControl)
    });
    // A command takeover does not time out.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(runtime.state(), RunState::OperatorControl);
    assert!(h.held().is_empty());
    runtime.commands().send(Command::HandBack).unwrap();
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Running)
    });
    runtime.commands().send(Command::Stop).unwrap();
    let _ = run_to_end(runtime);
    assert!(h.held().is_empty());
}

#[test]
fn pause_releases_and_injected_text_plays_under_the_same_rules() {
    let h = Harness::new();
    let mut cfg = config();
    cfg.start_running = false;
    cfg.deny_list = lumine_runtime::DenyList::parse(&["Super"]).unwrap();
    let runtime = h.start(script(&HOLD_W.repeat(40)), cfg);
    let commands = runtime.commands();
    // Malformed: reported, nothing played.
    commands
        .send(Command::InjectAction("0 0 0 ; E E ; ; ; ; ;".to_owned()))
        .unwrap();
    events_until(
        &runtime,
        Duration::from_secs(3),
        |e| matches!(&e.kind, EventKind::Notice(n) if n.contains("rejected")),
    );
    commands
        .send(Command::InjectAction("0 0 0 ; E ; E ; ; ; ;".to_owned()))
        .unwrap();
    events_until(
        &runtime,
        Duration::from_secs(3),
        |e| matches!(&e.kind, EventKind::ChunkPlayed(c) if c.index == 2),
    );
    use InputOp::{Press, Release};
    assert_eq!(h.key_ops(), [Press(Key::E), Release(Key::E)]);
    commands.send(Command::Start).unwrap();
    wait_for_w(&h);
    commands.send(Command::Pause).unwrap();
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Paused(PauseReason::Command))
    });
    assert!(released_soon(&h));
    commands.send(Command::Stop).unwrap();
    let _ = run_to_end(runtime);
}

#[test]
fn a_vanished_window_pauses_and_a_returning_one_resumes() {
    let h = Harness::new();
    let runtime = h.start(script(&HOLD_W.repeat(40)), config());
    wait_for_w(&h);
    h.frames
        .gone
        .store(true, std::sync::atomic::Ordering::SeqCst);
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| {
            matches!(s, RunState::Paused(PauseReason::WindowUnavailable(_)))
        })
    });
    assert!(released_soon(&h));
    h.frames
        .gone
        .store(false, std::sync::atomic::Ordering::SeqCst);
    events_until(&runtime, Duration::from_secs(3), |e| {
        is_state(e, |s| *s == RunState::Running)
    });
    runtime.commands().send(Command::Stop).unwrap();
    let _ = run_to_end(runtime);
    assert!(h.held().is_empty());
}
