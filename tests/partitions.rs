//! Tensor-parallel partitions through the binary: the tiny test model (4 KV heads)
//! exported with 1, 2 and 4 decoder ranks (models/test-tiny, test-tiny-tp2,
//! test-tiny-tp4) must give the golden greedy tokens and first-step logits of
//! transformers, and agree with each other; a broken rank must fail cleanly.

use std::path::{Path, PathBuf};
use std::process::Output;

use lumine_tests::{lumine, model_check, models_dir, read_json, stderr, stdout};
use serde_json::Value;

/// Largest allowed difference between our logits and transformers' (and between
/// partitionings).
const LOGIT_TOLERANCE: f64 = 1e-4;

fn golden_dir() -> PathBuf {
    // The partitioned exports come from the same checkpoint as test-tiny.
    models_dir().join("test-tiny/golden")
}

fn generate(model: &Path, case: &str, new_tokens: usize) -> Output {
    let config = tempfile::tempdir().unwrap();
    lumine(&config)
        .arg("generate")
        .arg("--model")
        .arg(model)
        .arg("--messages")
        .arg(golden_dir().join(format!("{case}.messages.json")))
        .args(["--greedy", "--json", "--no-stop", "--top-logits", "10"])
        .args(["--max-new-tokens", &new_tokens.to_string()])
        .output()
        .unwrap()
}

/// Greedy tokens and first-step top logits of `model` on `case`, checked against the
/// golden file.
fn check_case(model: &str, case: &str) -> (Value, Vec<(u64, f64)>) {
    let golden = read_json(&golden_dir().join(format!("{case}.golden.json")));
    let new_tokens = golden["greedy_tokens"].as_array().unwrap().len();
    let out = generate(&models_dir().join(model), case, new_tokens);
    let label = format!("{model}/{case}");
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let ours: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(ours["input_ids"], golden["input_ids"], "{label}: input_ids");
    assert_eq!(
        ours["token_ids"], golden["greedy_tokens"],
        "{label}: greedy tokens"
    );
    let top: Vec<(u64, f64)> = ours["top_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    let golden_top = golden["first_step_top_logits"].as_array().unwrap();
    assert_eq!(top.len(), golden_top.len(), "{label}");
    for ((id, logit), g) in top.iter().zip(golden_top) {
        assert_eq!(Some(*id), g[0].as_u64(), "{label}: top-logit ids differ");
        let diff = (logit - g[1].as_f64().unwrap()).abs();
        assert!(
            diff <= LOGIT_TOLERANCE,
            "{label}: logit of {id} differs from transformers by {diff}"
        );
    }
    (ours["token_ids"].clone(), top)
}

/// 1, 2 and 4 partitions: golden parity on every case, and the same tokens and
/// first-step logits (within the tolerance) as the unpartitioned model.
fn check_partitioned(model: &str) {
    for case in ["a", "b", "c"] {
        let (tokens_1, top_1) = check_case("test-tiny", case);
        let (tokens_n, top_n) = check_case(model, case);
        assert_eq!(
            tokens_n, tokens_1,
            "{model}/{case}: tokens differ from 1 partition"
        );
        for ((id1, l1), (idn, ln)) in top_1.iter().zip(&top_n) {
            assert_eq!(id1, idn, "{model}/{case}");
            assert!(
                (l1 - ln).abs() <= LOGIT_TOLERANCE,
                "{model}/{case}: logit of {id1}: {l1} with 1 partition, {ln} partitioned"
            );
        }
    }
}

#[test]
fn two_partitions_match_golden_and_one_partition() {
    check_partitioned("test-tiny-tp2");
}

#[test]
fn four_partitions_match_golden_and_one_partition() {
    check_partitioned("test-tiny-tp4");
}

#[test]
fn model_check_accepts_the_partitioned_models() {
    for model in ["test-tiny-tp2", "test-tiny-tp4"] {
        let (code, text) = model_check(&models_dir().join(model));
        assert_eq!(code, Some(0), "{model}: {text}");
    }
}

/// A copy of test-tiny-tp2 whose rank 1 graph is rank 1 of the 4-way export: it
/// loads, but expects one KV head where the engine feeds two, so rank 1 fails on
/// its first run while rank 0 goes on to its first reduction and waits there.
fn tp2_with_a_wrong_rank() -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    let src = models_dir().join("test-tiny-tp2");
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.path().join(entry.file_name())).unwrap();
    }
    std::fs::copy(
        models_dir().join("test-tiny-tp4/decoder.rank1.onnx"),
        dst.path().join("decoder.rank1.onnx"),
    )
    .unwrap();
    dst
}

#[test]
fn a_failing_rank_is_reported_and_nothing_hangs() {
    let dir = tp2_with_a_wrong_rank();
    let out = generate(dir.path(), "c", 4);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("rank 1 of 2 failed"), "{err}");
    assert!(err.contains("decoder.rank1.onnx"), "{err}");
    let (code, text) = model_check(dir.path());
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("expected 2"), "{text}");
}

#[test]
fn a_missing_rank_graph_is_reported() {
    let dir = tp2_with_a_wrong_rank();
    std::fs::remove_file(dir.path().join("decoder.rank1.onnx")).unwrap();
    let out = generate(dir.path(), "c", 4);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("decoder.rank1.onnx"), "{err}");
    let (code, text) = model_check(dir.path());
    assert_ne!(code, Some(0), "{text}");
    assert!(text.contains("rank 1 graph file is missing"), "{text}");
}
