//! `lumine record` turns input into action strings; a `kill -9` of it
//! leaves a readable trajectory; `lumine replay` plays a recorded run again.
#![cfg(target_os = "linux")]

#[path = "runtime_support.rs"]
mod support;

use std::time::Duration;

use lumine_action::{Chunk, Key, KeyVocabulary, parse_action};
use lumine_runtime::trajectory::Trajectory;
use support::{Scene, assert_nothing_held};

/// Runs of a key over a chunk timeline: (key, first chunk, length), in order.
fn runs(timeline: &[Chunk]) -> Vec<(Key, usize, usize)> {
    let mut out: Vec<(Key, usize, usize)> = Vec::new();
    for (i, chunk) in timeline.iter().enumerate() {
        for key in chunk {
            let continues = i > 0 && timeline[i - 1].contains(key);
            if continues {
                if let Some(run) = out.iter_mut().rev().find(|r| r.0 == key) {
                    run.2 += 1;
                }
            } else {
                out.push((key, i, 1));
            }
        }
    }
    out.sort_by_key(|&(k, start, _)| (start, k));
    out
}

/// Every chunk of the actions, in order.
fn timeline(actions: &[String], vocab: &KeyVocabulary) -> Vec<Chunk> {
    actions
        .iter()
        .flat_map(|a| parse_action(a, vocab).unwrap().chunks)
        .collect()
}

/// `lumine record` of the scene's window into `out`, small frames.
fn record_64x48(scene: &Scene, out: &std::path::Path, extra: &[&str]) -> support::Lumine {
    let mut args = vec![
        "record",
        "--window",
        "Game",
        "--out",
        out.to_str().unwrap(),
        "--frame-size",
        "64x48",
    ];
    args.extend_from_slice(extra);
    scene.lumine(&args)
}

const PLAYED: &str = "\
0 0 0 ; W ; W ; W ; W ; ;
0 0 0 ; ; Shift W ; Shift W ; ; ; D
30 -12 0 ; ; ; ; ; ;
0 0 1 ; ; ; LB ; LB ; ;
-18 6 -2 ; ; ; ; ; ;
";

#[test]
fn a_recording_of_injected_input_reproduces_it_as_action_strings() {
    // Full screen: the pointer, and so the buttons, are over the window.
    let scene = Scene::start(640, 480);
    let d = scene.display();
    let out = scene.dir.path().join("demo");
    let mut record = record_64x48(&scene, &out, &["--mouse-scale", "1,1"]);
    record.wait_stderr("recording window");
    std::thread::sleep(Duration::from_millis(300));
    // Someone else's XTest input: our own runtime playing a script.
    let mut play = scene.run_script(PLAYED, &["--no-monitor"]);
    assert_eq!(play.wait(), Some(0), "{}", play.stderr());
    // Stopped like an operator would, once the input is over.
    std::thread::sleep(Duration::from_millis(500));
    record.signal("INT");
    assert_eq!(record.wait(), Some(0), "{}", record.stderr());

    let t = Trajectory::open(&out).unwrap();
    assert!(t.steps.len() >= 8, "{} steps", t.steps.len());
    assert!(
        t.steps
            .iter()
            .all(|s| t.frame_path(s).is_some_and(|p| p.is_file()))
    );
    let vocab = KeyVocabulary::default();
    let recorded: Vec<String> = t.steps.iter().map(|s| s.action.clone()).collect();
    let played: Vec<String> = PLAYED.lines().map(str::to_owned).collect();

    // Motion and scroll totals are exact.
    let sum = |actions: &[String]| {
        actions.iter().fold((0, 0, 0), |a, s| {
            let x = parse_action(s, &vocab).unwrap();
            (a.0 + x.dx, a.1 + x.dy, a.2 + x.dz)
        })
    };
    assert_eq!(sum(&recorded), sum(&played), "{recorded:#?}");

    // Keys: the same holds in the same order. The recorder's 33 ms grid is
    // not the player's, so a hold of n chunks spans n or n + 1 recorded
    // chunks and starts up to a chunk later than the player's grid says.
    let want = runs(&timeline(&played, &vocab));
    let got = runs(&timeline(&recorded, &vocab));
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        want.iter().map(|r| r.0).collect::<Vec<_>>(),
        "recorded {recorded:#?}"
    );
    let shift = got[0].1 as i64 - want[0].1 as i64;
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g.2 == w.2 || g.2 == w.2 + 1) && ((g.1 as i64 - w.1 as i64) - shift).abs() <= 1,
            "run {g:?} vs {w:?}; recorded {recorded:#?}"
        );
    }
    assert_nothing_held(d);
}

#[test]
fn kill_9_of_a_recording_leaves_a_readable_trajectory() {
    let scene = Scene::start(320, 240);
    let out = scene.dir.path().join("demo");
    let mut record = record_64x48(&scene, &out, &[]);
    let steps = out.join("steps.jsonl");
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while std::fs::read_to_string(&steps).map_or(0, |s| s.lines().count()) < 6 {
        assert!(std::time::Instant::now() < deadline, "{}", record.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    record.signal("KILL");
    let _ = record.wait();
    let t = Trajectory::open(&out).unwrap();
    assert!(t.steps.len() >= 6);
    for (i, s) in t.steps.iter().enumerate() {
        assert_eq!(s.step, i as u64);
        assert!(t.frame_path(s).unwrap().is_file());
        parse_action(&s.action, &KeyVocabulary::default()).unwrap();
    }
}

#[test]
fn a_recorded_run_replays_the_same_input() {
    let scene = Scene::start(640, 480);
    let (d, probe) = (scene.display(), &scene.probe);
    let rec = scene.dir.path().join("run");
    let mark = probe.mark();
    let mut run = scene.run_script(PLAYED, &["--record", rec.to_str().unwrap()]);
    assert_eq!(run.wait(), Some(0), "{}", run.stderr());
    std::thread::sleep(Duration::from_millis(100));
    let first: Vec<String> = probe
        .inputs_since(mark)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let first_motion = probe.raw_motion_since(mark);
    let mark = probe.mark();
    let mut replay = scene.lumine(&["replay", rec.to_str().unwrap(), "--window", "Game"]);
    assert_eq!(replay.wait(), Some(0), "{}", replay.stderr());
    std::thread::sleep(Duration::from_millis(100));
    let second: Vec<String> = probe
        .inputs_since(mark)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_eq!(probe.raw_motion_since(mark), first_motion);
    assert_nothing_held(d);
}
