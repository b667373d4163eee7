//! `lumine run` without a window: recorded frames in, nothing injected. The
//! engine policy end to end through the binary, scripts that are refused,
//! and a recording of an offline run.

use std::path::{Path, PathBuf};

use lumine_runtime::trajectory::Trajectory;
use lumine_tests::{lumine, stderr, stdout};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn golden_frames() -> PathBuf {
    repo().join("models/test-tiny/golden")
}

#[test]
fn the_model_runs_offline_under_the_action_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let out = lumine(&dir)
        .args(["run", "--frames"])
        .arg(golden_frames())
        .arg("--model")
        .arg(repo().join("models/test-tiny"))
        .args(["--frame-size", "112x56", "--history", "2", "--lockstep"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("policy model:lumine-test-tiny"), "{err}");
    // Random weights would write gibberish on their own; decoded under the action
    // grammar, each of the three frames' turns parses and all its chunks play.
    assert_eq!(err.matches("turn rejected").count(), 0, "{err}");
    assert!(err.contains("18 chunks played, 0 deadline misses"), "{err}");
}

#[test]
fn a_model_is_never_shown_more_frames_than_it_was_trained_with() {
    // test-tiny, with a manifest that says it was trained on one frame of context.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("one-frame");
    std::fs::create_dir(&model).unwrap();
    let tiny = repo().join("models/test-tiny");
    for entry in std::fs::read_dir(&tiny).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(tiny.join("manifest.ron")).unwrap();
    let end = manifest.rfind(')').unwrap();
    let one = format!("{}  history_frames: Some(1),\n)\n", &manifest[..end]);
    std::fs::write(model.join("manifest.ron"), one).unwrap();
    let run = |history: &str| {
        let out = lumine(&dir)
            .args(["run", "--frames"])
            .arg(golden_frames())
            .arg("--model")
            .arg(&model)
            .args(["--frame-size", "112x56", "--history", history, "--lockstep"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stderr(&out)
    };
    let err = run("3");
    assert!(
        err.contains("history: 1 frames, as the model was trained (asked for 3)"),
        "{err}"
    );
    assert!(err.contains("18 chunks played"), "{err}");
    // Fewer than it was trained with is the operator's choice.
    assert!(!run("1").contains("history:"));
}

#[test]
fn a_malformed_script_is_refused_with_line_numbers_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.txt");
    std::fs::write(
        &script,
        "0 0 0 ; W ; ; ; ; ;\n# fine\n0 0 0 ; W W ; ; ; ; ;\n7 0 0 ; Fly ; ; ; ; ;\n",
    )
    .unwrap();
    let out = lumine(&dir)
        .args(["run", "--frames"])
        .arg(golden_frames())
        .arg("--script")
        .arg(&script)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("line 3, byte 10"), "{err}");
    assert!(err.contains("line 4, byte 9"), "{err}");
    assert!(!err.contains("state: Running"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn an_offline_script_run_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.txt");
    std::fs::write(&script, "3 0 0 ; W ; W ; ; ; ;\n0 0 1 ; ; LB ; ; ; ;\n").unwrap();
    let rec = dir.path().join("rec");
    let out = lumine(&dir)
        .args(["run", "--frames"])
        .arg(golden_frames())
        .arg("--script")
        .arg(&script)
        .arg("--record")
        .arg(&rec)
        // Lockstep: scaling frames in a debug build may outlast a step.
        .args(["--frame-size", "64x36", "--lockstep"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2, "one line per step");
    let t = Trajectory::open(&rec).unwrap();
    assert_eq!((t.meta.frame_width, t.meta.frame_height), (64, 36));
    assert_eq!(t.meta.policy.as_deref(), Some("script:s.txt"));
    let actions: Vec<&str> = t.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(actions, ["3 0 0 ; W ; W ; ; ; ;", "0 0 1 ; ; LB ; ; ; ;"]);
    assert!(
        t.steps
            .iter()
            .all(|s| s.chunks_ms.iter().all(Option::is_some))
    );
}
