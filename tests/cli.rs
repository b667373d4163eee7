//! The `lumine` command as a user runs it: exit codes, JSON and text output.

use lumine_tests::{lumine, stderr, stdout};
use serde_json::{Value, json};

fn check(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    lumine(&dir)
        .args(["action", "check"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_json_prints_the_documented_object() {
    let out = check(&[
        "--json",
        "92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        value,
        json!({
            "thought": null,
            "dx": 92, "dy": 0, "dz": 0,
            "chunks": [["Shift", "W"], ["Shift", "W"], ["Shift", "W"], ["F", "W"], ["F", "W"], ["F"]],
            "canonical": "92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F",
        })
    );
    // Field order as documented.
    let text = stdout(&out);
    let order = ["thought", "dx", "dy", "dz", "chunks", "canonical"].map(|k| text.find(k).unwrap());
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn check_prints_canonical_form() {
    let out = check(&["<|action_start|>  -3   7 1;W;W ;;; ;LB  <|action_end|>"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "-3 7 1 ; W ; W ; ; ; ; LB");
}

#[test]
fn thought_turn_keeps_thought() {
    let out = check(&[
        "--json",
        "<|thought_start|>去开红色箱子<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ; F<|action_end|>",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(value["thought"], "去开红色箱子");
    assert_eq!(value["chunks"][5], json!(["F"]));
}

#[test]
fn every_malformed_case_exits_2_with_an_offset() {
    let cases = [
        ("0 0 0 ; Shx ; ; ; ; ;", "unknown key"),
        ("0 0 0 ; A B C D E ; ; ; ; ;", "fifth key"),
        ("0 0 0 ; W W ; ; ; ; ;", "duplicate key"),
        ("0 0 0 ; ; ; ; ;", "missing group"),
        ("0 0 0 ; ; ; ; ; ; ; W", "extra group"),
        ("1000 0 0 ; ; ; ; ; ;", "out of range"),
        ("0 0 6 ; ; ; ; ; ;", "out of range"),
        (
            "<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|> more",
            "trailing text",
        ),
        ("<|thought_start|>go left", "unterminated thought"),
    ];
    for (input, what) in cases {
        let out = check(&["--json", input]);
        assert_eq!(out.status.code(), Some(2), "{input}: {}", stdout(&out));
        let value: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let offset = value["error"]["offset"].as_u64();
        assert!(
            offset.is_some_and(|o| o as usize <= input.len()),
            "{input}: {value}"
        );
        let message = value["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(!message.is_empty(), "{input}");
        let _ = what; // the exact wording is the action crate's; see its unit tests
    }
}

#[test]
fn all_inputs_are_checked_before_exiting() {
    let out = check(&["0 0 0 ; ; ; ; ; ;", "bad", "1 2 3 ; W ; ; ; ; ;"]);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<_> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "0 0 0 ; ; ; ; ; ;");
    assert!(lines[1].starts_with("error: at byte 0"), "{lines:?}");
    assert_eq!(lines.last().unwrap(), "1 2 3 ; W ; ; ; ; ;");
}

#[test]
fn custom_key_vocabulary_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.ron");
    std::fs::write(&keys, lumine_action_default_keys_with_jump()).unwrap();
    let out = check(&["--keys", keys.to_str().unwrap(), "0 0 0 ; Jump ; ; ; ; ;"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = check(&["0 0 0 ; Jump ; ; ; ; ;"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The default table with `Space` renamed `Jump`.
fn lumine_action_default_keys_with_jump() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../app/action/data/default_keys.ron"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace("\"Space\"", "\"Jump\"")
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = lumine(&dir).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("lumine "), "{}", stdout(&out));
    let out = lumine(&dir).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).contains("action"));
}

#[test]
fn config_is_created_on_first_use_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = lumine(&dir).args(["config", "show"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("config.ron");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("history_frames: 10")
    );

    std::fs::write(&path, "(\n  locale: \"en\",\n  colour: 3,\n)\n").unwrap();
    let out = lumine(&dir).args(["config", "check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:3:", path.display())), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn doctor_reports_the_onnxruntime_library() {
    let dir = tempfile::tempdir().unwrap();
    let out = lumine(&dir)
        .arg("doctor")
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let line = text
        .lines()
        .find(|l| l.starts_with("onnxruntime:"))
        .unwrap();
    assert!(line.contains("libonnxruntime.so"), "{line}");
    assert!(line.contains("version 1.31.1"), "{line}");
    assert!(text.contains("providers:         CPU"), "{text}");
}

#[test]
fn doctor_names_a_broken_library_and_the_expected_version() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    std::fs::write(
        dir.path().join("config.ron"),
        format!(
            "(onnxruntime_library: Some({:?}))",
            fake.display().to_string()
        ),
    )
    .unwrap();
    let out = lumine(&dir).arg("doctor").output().unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("onnxruntime:"))
        .unwrap();
    assert!(line.contains(&fake.display().to_string()), "{line}");
    assert!(line.contains("expected version 1.31.1"), "{line}");
}
