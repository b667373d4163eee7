//! Recording: an agent run's trajectory on disk, replayed; a demonstration
//! recorded from operator input.

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lumine_action::{Key, KeyVocabulary};
use lumine_platform::{InputOp, OperatorEvent};
use lumine_runtime::policy::ReplayPolicy;
use lumine_runtime::record::{DemoConfig, record_demonstration};
use lumine_runtime::trajectory::{Trajectory, TrajectoryMeta, TrajectorySource, TrajectoryWriter};
use lumine_runtime::{Actor, FrameInput, Runtime, RuntimeParts};
use support::{Harness, StillFrames, config, run_to_end, script};

const SCRIPT: &str = "3 0 0 ; W ; W ; W ; W ; W ; W\n\
                      0 0 0 ; W ; W Shift ; Shift ; ; ; F\n\
                      -2 1 1 ; LB ; ; ; ; ; \n";

#[test]
fn an_agent_run_is_recorded_and_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new();
    let meta = TrajectoryMeta::new(TrajectorySource::Agent, (32, 18), [1.0, 1.0]);
    let writer = TrajectoryWriter::create(dir.path(), &meta, Instant::now()).unwrap();
    let runtime = Runtime::start(
        RuntimeParts {
            frames: FrameInput::Live(Box::new(StillFrames::default())),
            sink: Box::new(h.sink.clone()),
            focus: None,
            monitor: None,
            policy: script(SCRIPT),
            record: Some(writer),
        },
        config(),
    )
    .unwrap();
    let (summary, _) = run_to_end(runtime);
    assert_eq!(summary.recorded, Some(Ok(3)));
    let t = Trajectory::open(dir.path()).unwrap();
    assert!(!t.torn_tail);
    let actions: Vec<&str> = t.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, SCRIPT.lines().map(str::trim).collect::<Vec<_>>());
    for step in &t.steps {
        assert_eq!(step.actor, Actor::Agent);
        assert!(t.frame_path(step).unwrap().is_file());
        let times: Vec<f64> = step.chunks_ms.iter().map(|c| c.unwrap()).collect();
        assert_eq!(times.len(), 6);
        assert!(
            times.windows(2).all(|w| (w[1] - w[0] - 33.33).abs() < 5.0),
            "{times:?}"
        );
        assert!(times[0] > step.captured_ms);
    }

    // Replaying the recording presses exactly the same keys.
    let replay = Harness::new();
    let policy = ReplayPolicy::open(dir.path(), &KeyVocabulary::default()).unwrap();
    assert_eq!(policy.len(), 3);
    let _ = run_to_end(replay.start(Box::new(policy), config()));
    assert_eq!(replay.key_ops(), h.key_ops());
    assert!(h.key_ops().contains(&InputOp::Press(Key::Shift)));
}

#[test]
fn a_demonstration_becomes_action_strings() {
    let dir = tempfile::tempdir().unwrap();
    let meta = TrajectoryMeta::new(TrajectorySource::Demonstration, (32, 18), [2.0, 2.0]);
    let writer = TrajectoryWriter::create(dir.path(), &meta, Instant::now()).unwrap();
    let monitor = support::FakeMonitor::default();
    let feeder = {
        let monitor = monitor.clone();
        std::thread::Builder::new()
            .name("operator".to_owned())
            .spawn(move || {
                // Started right after the recorder: W down for ~250 ms, a
                // mouse sweep, a wheel step.
                std::thread::sleep(Duration::from_millis(50));
                monitor.send(OperatorEvent::Press(Key::W));
                monitor.send(OperatorEvent::Move { dx: 30, dy: -10 });
                std::thread::sleep(Duration::from_millis(250));
                monitor.send(OperatorEvent::Release(Key::W));
                monitor.send(OperatorEvent::Scroll(1));
            })
            .unwrap()
    };
    let mut frames = FrameInput::Live(Box::new(StillFrames::default()));
    let config = DemoConfig {
        vocab: KeyVocabulary::default(),
        mouse_scale: (2.0, 2.0),
        frame_size: None,
        duration: Some(Duration::from_millis(800)),
        instruction: Some("walk".to_owned()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut monitor = monitor;
    let summary = record_demonstration(
        &mut frames,
        &mut monitor,
        writer,
        &config,
        &stop,
        &mut |_| {},
    )
    .unwrap();
    feeder.join().unwrap();
    assert_eq!(summary.steps, 4);
    let t = Trajectory::open(dir.path()).unwrap();
    let actions: Vec<&str> = t.steps.iter().map(|s| s.action.as_str()).collect();
    // W from ~50 ms to ~300 ms: chunks 1..=5 of step 0, chunks 0..=2 of step 1.
    assert!(actions[0].starts_with("15 -5 0 ;"), "{actions:?}");
    assert!(
        actions[0].ends_with("; W ; W ; W ; W ; W") || actions[0].ends_with("; W ; W ; W ; W"),
        "{actions:?}"
    );
    assert!(actions[1].contains("W"), "{actions:?}");
    assert!(actions[1].starts_with("0 0 1 ;"), "{actions:?}");
    assert_eq!(actions[3], "0 0 0 ; ; ; ; ; ;");
    assert!(
        t.steps
            .iter()
            .all(|s| s.actor == Actor::Operator && s.frame.is_some())
    );
}

#[test]
fn a_takeover_is_recorded_as_operator_steps() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new();
    let meta = TrajectoryMeta::new(TrajectorySource::Agent, (32, 18), [1.0, 1.0]);
    let writer = TrajectoryWriter::create(dir.path(), &meta, Instant::now()).unwrap();
    let mut cfg = config();
    cfg.takeover_idle = Duration::from_millis(500);
    let runtime = Runtime::start(
        RuntimeParts {
            frames: FrameInput::Live(Box::new(StillFrames::default())),
            sink: Box::new(h.sink.clone()),
            focus: None,
            monitor: Some(Box::new(h.monitor.clone())),
            policy: script(&"0 0 0 ; W ; W ; W ; W ; W ; W\n".repeat(12)),
            record: Some(writer),
        },
        cfg,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // The operator holds D for ~400 ms, then lets go; the agent resumes
    // 500 ms later and finishes its script.
    h.monitor.send(OperatorEvent::Press(Key::D));
    std::thread::sleep(Duration::from_millis(400));
    h.monitor.send(OperatorEvent::Release(Key::D));
    let (summary, _) = run_to_end(runtime);
    assert!(
        matches!(summary.recorded, Some(Ok(n)) if n > 12),
        "{summary:?}"
    );
    let t = Trajectory::open(dir.path()).unwrap();
    let operator: Vec<&str> = t
        .steps
        .iter()
        .filter(|s| s.actor == Actor::Operator)
        .map(|s| s.action.as_str())
        .collect();
    assert!(!operator.is_empty(), "{:#?}", t.steps);
    assert!(operator.iter().any(|a| a.contains('D')), "{operator:?}");
    let agent = t.steps.iter().filter(|s| s.actor == Actor::Agent).count();
    assert_eq!(agent, 12);
    // Steps are in order, operator and agent alike.
    assert!(t.steps.windows(2).all(|w| w[0].step < w[1].step));
}
