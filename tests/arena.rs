//! The practice arena end to end: the expert's demonstrations, replayed by
//! `lumine replay` into the arena window on Xvfb (XTest, the 30 Hz executor),
//! reach the same success; `lumine eval arena` runs the real path and reports.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lumine_platform::x11::xvfb::Xvfb;
use lumine_tests::{lumine, stderr, stdout};
use serde_json::Value;

fn last_state(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
}

struct Arena(Child);

impl Drop for Arena {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the arena window; returns it and its window id.
fn arena(
    config: &tempfile::TempDir,
    display: &str,
    seed: u64,
    task: &str,
    state: &Path,
) -> (Arena, u64) {
    let child = lumine(config)
        .args([
            "arena",
            "--display",
            display,
            "--seed",
            &seed.to_string(),
            "--task",
            task,
        ])
        .arg("--state-out")
        .arg(state)
        .stdout(Stdio::null())
        .spawn()
        .expect("run lumine arena");
    let arena = Arena(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(id) = last_state(state).and_then(|s| s["window"].as_u64()) {
            return (arena, id);
        }
        assert!(Instant::now() < deadline, "the arena window did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn expert_demonstrations_replay_into_the_window_to_success() {
    let config = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let tasks = [(700u64, "guard"), (701, "chest"), (702, "key-door")];
    let run = lumine(&config)
        .args([
            "arena",
            "demos",
            "--episodes",
            "3",
            "--seed",
            "700",
            "--tasks",
            "guard,chest,key-door",
        ])
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let xvfb = Xvfb::start(1280, 720).expect("Xvfb must be installed and start");
    xvfb.set_auto_repeat(false).unwrap();
    for (seed, task) in tasks {
        let dir = out.path().join(format!("{seed:06}-{task}"));
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["source"], "demonstration");
        assert_eq!(
            (meta["frame_width"].as_u64(), meta["frame_height"].as_u64()),
            (Some(640), Some(360))
        );
        let steps: Vec<Value> = std::fs::read_to_string(dir.join("steps.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(steps.len() > 3, "{task}: {} steps", steps.len());
        assert_eq!(steps[0]["instruction"], meta["instruction"]);
        assert!(
            steps[0]["thought"].is_string(),
            "the first step states the plan"
        );
        assert!(
            steps
                .iter()
                .all(|s| dir.join(s["frame"].as_str().unwrap()).is_file())
        );
        // Play the actions into a fresh arena window of the same seed and task.
        let state = out.path().join(format!("state-{seed}.jsonl"));
        let (_arena, id) = arena(&config, xvfb.display(), seed, task, &state);
        let replay = lumine(&config)
            .arg("replay")
            .arg(&dir)
            .args([
                "--display",
                xvfb.display(),
                "--window",
                &format!("{id:#x}"),
                "--no-monitor",
                "-q",
            ])
            .output()
            .unwrap();
        assert!(replay.status.success(), "{}", stderr(&replay));
        std::thread::sleep(Duration::from_millis(300));
        let last = last_state(&state).unwrap();
        assert_eq!(
            last["success"], true,
            "{task} (seed {seed}) not done by the replay: {last}"
        );
    }
}

#[test]
fn demos_exit_3_and_write_nothing_for_an_episode_the_expert_does_not_finish() {
    // The guard of this layout is six cells away: one step cannot reach it.
    let config = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = lumine(&config)
        .args(["arena", "demos", "--episodes", "1", "--seed", "1000002"])
        .args(["--tasks", "guard", "--max-steps", "1", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&run), stderr(&run));
    assert_eq!(run.status.code(), Some(3), "{said}");
    assert!(said.contains("not done in 1 steps, not written"), "{said}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing is written: {left:?}");
}

#[test]
fn eval_arena_runs_the_expert_through_the_real_path() {
    let config = tempfile::tempdir().unwrap();
    let run = lumine(&config)
        .args([
            "eval",
            "arena",
            "--expert",
            "--xvfb",
            "--json",
            "--episodes",
            "2",
        ])
        .args([
            "--tasks",
            "guard,crystal-chest",
            "--seed",
            "5000",
            "--timeout",
            "60",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let report: Value = serde_json::from_str(stdout(&run).trim()).unwrap();
    assert_eq!(report["episodes"], 2);
    assert_eq!(report["tasks"]["guard"]["episodes"], 1);
    assert_eq!(report["tasks"]["crystal-chest"]["episodes"], 1);
    assert_eq!(report["simple"]["successes"], 1, "{report}");
    assert_eq!(report["multi_step"]["successes"], 1, "{report}");
    assert!(report["chunks_played"].as_u64().unwrap() > 6);
    assert!(report["simple"]["mean_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(report["simple"]["mean_progress"], 1.0);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["success"], true);
        assert_eq!(run["distance_end"], 0, "{run}");
        assert!(run["distance_start"].as_u64().unwrap() > 0, "{run}");
    }
}

#[test]
fn the_bundled_policy_moves_toward_its_goal_in_real_time() {
    // The trained default model (models/DEFAULT), the real path: the arena window on a private
    // Xvfb, X11 capture, the engine, the 30 Hz executor, XTest. A short episode on a layout it
    // never saw in training (seeds from 1,000,000); the arena measures the path length to the
    // goal at the start and at the end.
    let name = std::fs::read_to_string(lumine_tests::models_dir().join("DEFAULT")).unwrap();
    let model = lumine_tests::models_dir().join(name.trim());
    let config = tempfile::tempdir().unwrap();
    // The release binary, as a user runs it: a debug build cannot keep the 200 ms step.
    let run = std::process::Command::new(lumine_tests::lumine_release_bin())
        .env("LUMINE_CONFIG", config.path().join("config.ron"))
        .args(["eval", "arena", "--model"])
        .arg(&model)
        .args(["--xvfb", "--json", "--episodes", "1", "--tasks", "guard"])
        .args(["--seed", "1000002", "--timeout", "20"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    let report: Value = serde_json::from_str(stdout(&run).trim()).unwrap();
    let episode = &report["runs"][0];
    let start = episode["distance_start"]
        .as_u64()
        .expect("distance at the start");
    let end = episode["distance_end"]
        .as_u64()
        .expect("distance at the end");
    assert!(
        episode["success"] == true || end < start,
        "the agent did not get closer to the guard: {episode}"
    );
    assert!(report["chunks_played"].as_u64().unwrap() > 30, "{report}");
}
