//! The engine against transformers: `lumine generate` on the committed test models
//! must reproduce the golden files made by models/export/make_golden.py, and
//! `lumine model check` must reject broken model directories with usable messages.

use lumine_tests::{lumine, model_check, models_dir, read_json, stderr, stdout};
use serde_json::Value;

/// Largest allowed difference between our logits and transformers'.
const LOGIT_TOLERANCE: f64 = 1e-4;

fn check_case(model: &str, case: &str) {
    check_case_against(model, model, case);
}

/// `model` must reproduce the golden files of `source` (the same checkpoint).
fn check_case_against(model: &str, source: &str, case: &str) {
    let dir = models_dir().join(model);
    let golden_dir = models_dir().join(source).join("golden");
    let golden = read_json(&golden_dir.join(format!("{case}.golden.json")));
    let new_tokens = golden["greedy_tokens"].as_array().unwrap().len();
    let config = tempfile::tempdir().unwrap();
    let out = lumine(&config)
        .arg("generate")
        .arg("--model")
        .arg(&dir)
        .arg("--messages")
        .arg(golden_dir.join(format!("{case}.messages.json")))
        .args(["--greedy", "--json", "--no-stop", "--top-logits", "10"])
        .args(["--max-new-tokens", &new_tokens.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{model}/{case}: {}", stderr(&out));
    let ours: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let label = format!("{model}/{case}");
    assert_eq!(ours["input_ids"], golden["input_ids"], "{label}: input_ids");
    assert_eq!(
        ours["image_grid_thw"], golden["image_grid_thw"],
        "{label}: image_grid_thw"
    );
    assert_eq!(
        ours["position_ids"], golden["position_ids"],
        "{label}: position_ids"
    );
    assert_eq!(
        ours["rope_deltas"], golden["rope_deltas"],
        "{label}: rope_deltas"
    );
    assert_eq!(
        ours["token_ids"], golden["greedy_tokens"],
        "{label}: greedy tokens"
    );
    let ours_top = ours["top_logits"].as_array().unwrap();
    let golden_top = golden["first_step_top_logits"].as_array().unwrap();
    assert_eq!(ours_top.len(), golden_top.len(), "{label}");
    for (a, b) in ours_top.iter().zip(golden_top) {
        assert_eq!(
            a[0], b[0],
            "{label}: top-logit ids differ: {ours_top:?} vs {golden_top:?}"
        );
        let diff = (a[1].as_f64().unwrap() - b[1].as_f64().unwrap()).abs();
        assert!(
            diff <= LOGIT_TOLERANCE,
            "{label}: logit of {} differs by {diff}",
            a[0]
        );
    }
    for stage in ["preprocess", "vision", "prefill"] {
        assert!(
            ours["timings_ms"][stage].as_f64().is_some(),
            "{label}: timing {stage}"
        );
    }
}

#[test]
fn tiny_one_1280x720_frame() {
    check_case("test-tiny", "a");
}

#[test]
fn tiny_two_odd_frames_interleaved_with_text() {
    check_case("test-tiny", "b");
}

#[test]
fn tiny_text_only() {
    check_case("test-tiny", "c");
}

#[test]
fn flat_config_layout_one_frame() {
    check_case("test-flat", "a");
}

#[test]
fn flat_config_layout_two_frames() {
    check_case("test-flat", "b");
}

#[test]
fn flat_config_layout_text_only() {
    check_case("test-flat", "c");
}

#[test]
fn streamed_text_is_the_generated_text() {
    let dir = models_dir().join("test-tiny");
    let config = tempfile::tempdir().unwrap();
    let run = |json: bool| {
        let mut cmd = lumine(&config);
        cmd.arg("generate")
            .arg("--model")
            .arg(&dir)
            .arg("--messages")
            .arg(dir.join("golden/c.messages.json"))
            .args(["--max-new-tokens", "12", "--no-stop"]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let streamed = run(false);
    assert!(streamed.status.success(), "{}", stderr(&streamed));
    let report: Value = serde_json::from_str(stdout(&run(true)).trim()).unwrap();
    assert_eq!(
        stdout(&streamed).trim_end_matches('\n'),
        report["text"].as_str().unwrap()
    );
    assert!(
        stderr(&streamed).contains("decode"),
        "{}",
        stderr(&streamed)
    );
}

#[test]
fn sampling_is_seeded() {
    let dir = models_dir().join("test-tiny");
    let config = tempfile::tempdir().unwrap();
    let run = |seed: &str| {
        let out = lumine(&config)
            .arg("generate")
            .arg("--model")
            .arg(&dir)
            .arg("--messages")
            .arg(dir.join("golden/c.messages.json"))
            .args(["--max-new-tokens", "16", "--no-stop", "--json"])
            .args(["--temperature", "1.5", "--top-p", "0.95", "--seed", seed])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let report: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        report["token_ids"].clone()
    };
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

/// A copy of the tiny model in a temporary folder, to break on purpose.
fn model_copy() -> tempfile::TempDir {
    let src = models_dir().join("test-tiny");
    let dst = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dst.path().join(entry.file_name())).unwrap();
        }
    }
    dst
}

#[test]
fn the_trained_arena_policy_agrees_with_its_checkpoint_and_manifest() {
    // The committed graphs reproduce transformers on the committed checkpoint (hf/), through
    // the goldens the training pipeline wrote (models/train/train_arena.sh).
    for case in ["b", "c"] {
        check_case_against("arena-tiny", "arena-tiny", case);
    }
    // The manifest describes that checkpoint, at the frame size and prompts it was trained with.
    let dir = models_dir().join("arena-tiny");
    let (code, text) = model_check(&dir);
    assert_eq!(code, Some(0), "{text}");
    let manifest = std::fs::read_to_string(dir.join("manifest.ron")).unwrap();
    let hf = read_json(&dir.join("hf/config.json"));
    let text_config = &hf["text_config"];
    for (field, value) in [
        ("hidden_size", &text_config["hidden_size"]),
        ("num_layers", &text_config["num_hidden_layers"]),
        ("vocab_size", &text_config["vocab_size"]),
        ("embed_dim", &hf["vision_config"]["embed_dim"]),
    ] {
        assert!(
            manifest.contains(&format!("{field}: {value}")),
            "manifest.ron {field} is not the checkpoint's {value}"
        );
    }
    assert!(
        manifest.contains("frame: (width: 256, height: 144)"),
        "{manifest}"
    );
    assert!(
        manifest.contains("instruction: \"You play the game with the keyboard and mouse."),
        "the arena prompts the policy was trained with: {manifest}"
    );
    // The training log ends with the saved checkpoint, and the manifest keeps the runtime to
    // the frames of context the policy was trained with.
    let log = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
    assert!(log.lines().last().unwrap().contains("\"saved\""), "{log}");
    let data: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let history = data["history"].as_u64().expect("the training history");
    assert!(
        manifest.contains(&format!("history_frames: Some({history})")),
        "trained with {history} frames: {manifest}"
    );
}

#[test]
fn the_bundled_default_model_passes_model_check() {
    let name = std::fs::read_to_string(models_dir().join("DEFAULT")).unwrap();
    let dir = models_dir().join(name.trim());
    let (code, text) = model_check(&dir);
    assert_eq!(code, Some(0), "{}: {text}", dir.display());
}

#[test]
fn model_check_accepts_the_test_models() {
    for model in ["test-tiny", "test-flat"] {
        let (code, text) = model_check(&models_dir().join(model));
        assert_eq!(code, Some(0), "{model}: {text}");
    }
}

#[test]
fn model_check_rejects_a_renamed_graph_input() {
    let dir = model_copy();
    let path = dir.path().join("decoder_model_merged.onnx");
    let bytes = std::fs::read(&path).unwrap();
    // Same length, so the protobuf stays valid: the graph now wants another name.
    let (from, to) = (b"past_key_values.1.value", b"past_key_values.1.vague");
    let renamed = replace_all(&bytes, from, to);
    assert_ne!(renamed, bytes);
    std::fs::write(&path, renamed).unwrap();
    let (code, text) = model_check(dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("decoder_model_merged.onnx: input \"past_key_values.1.value\" is missing"),
        "{text}"
    );
}

#[test]
fn model_check_rejects_a_tokenizer_without_a_special_token() {
    let dir = model_copy();
    let path = dir.path().join("tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("<|action_end|>", "<|act_finish|>")).unwrap();
    let (code, text) = model_check(dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("the tokenizer lacks the special token <|action_end|>"),
        "{text}"
    );
}

#[test]
fn model_check_rejects_a_truncated_graph() {
    let dir = model_copy();
    let path = dir.path().join("vision_encoder.onnx");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (code, text) = model_check(dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("vision_encoder.onnx: ONNX Runtime cannot load it"),
        "{text}"
    );
    assert!(text.contains("re-export"), "{text}");
}

#[test]
fn model_check_rejects_a_manifest_whose_pixel_layout_disagrees_with_the_graph() {
    // The graph takes one copy of a still frame per patch (folded temporal
    // kernel); a manifest that says otherwise would feed it 1176 columns.
    let dir = model_copy();
    let path = dir.path().join("manifest.ron");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("temporal_folded: true"), "{text}");
    std::fs::write(
        &path,
        text.replace("temporal_folded: true", "temporal_folded: false"),
    )
    .unwrap();
    let (code, text) = model_check(dir.path());
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("vision_encoder.onnx: pixel_values have 588 columns but the manifest's vision section (temporal_folded: false) means 1176"),
        "{text}"
    );
}

#[test]
fn generate_reports_a_missing_model_clearly() {
    let config = tempfile::tempdir().unwrap();
    let out = lumine(&config)
        .args(["generate", "--model", "/nonexistent/model", "--messages"])
        .arg(models_dir().join("test-tiny/golden/c.messages.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/model/manifest.ron"),
        "{}",
        stderr(&out)
    );
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}
