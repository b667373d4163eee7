//! The agent session on a partitioned model: with 2 and 4 decoder ranks, KV reuse,
//! streaming eviction (cache cut and key re-rotation on every rank's share of the
//! heads), speculation and flushes give the same turns and the same logits (within
//! 1e-4) as the unpartitioned model, step after step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lumine_engine::bench::{ScriptedActions, synthetic_frame};
use lumine_engine::provider::ProviderOptions;
use lumine_engine::session::{AgentMode, AgentSession, EvictionPolicy, SessionOptions};
use lumine_engine::speculative::TurnOptions;
use lumine_engine::{CancelToken, Model};

fn model(name: &str) -> Model {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name);
    Model::load(&dir, &ProviderOptions::default(), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Per step: the decoded turn's token ids (or the scripted text) and the logits
/// after the step's prefill.
fn run(name: &str, eviction: EvictionPolicy) -> Vec<(Vec<u32>, Vec<f32>)> {
    let mut model = model(name);
    let cancel = CancelToken::default();
    let mut s = AgentSession::new(
        &model,
        SessionOptions {
            mode: AgentMode::Reasoning,
            history: 2,
            eviction,
            max_thought_chars: 24,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    s.set_instruction(Some("Cross the bridge.".to_owned()))
        .unwrap();
    let mut script = ScriptedActions::new(3);
    let mut out = Vec::new();
    for i in 0..8 {
        let frame = synthetic_frame(224, 112, i);
        s.begin_step(&mut model, frame.as_ref_image(), Instant::now(), &cancel)
            .unwrap();
        let logits = s.last_logits().unwrap().to_vec();
        let tokens = if i == 3 {
            // A scripted thought flushes the window mid-run.
            let text = format!(
                "<|thought_start|>Look left.<|thought_end|>{}",
                script.next_text(&model.keys)
            );
            s.append_turn(&text).unwrap();
            text.bytes().map(u32::from).collect()
        } else {
            let turn = s
                .decode_turn(&mut model, &TurnOptions::default(), &cancel, &mut |_| {})
                .unwrap();
            turn.decoded.tokens
        };
        out.push((tokens, logits));
    }
    out
}

fn compare(eviction: EvictionPolicy) {
    let reference = run("test-tiny", eviction);
    for name in ["test-tiny-tp2", "test-tiny-tp4"] {
        let ours = run(name, eviction);
        for (i, ((t1, l1), (tn, ln))) in reference.iter().zip(&ours).enumerate() {
            assert_eq!(t1, tn, "{name} {eviction:?} step {i}: turn tokens differ");
            let diff = l1
                .iter()
                .zip(ln)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                diff <= 1e-4,
                "{name} {eviction:?} step {i}: logits differ by {diff}"
            );
        }
    }
}

#[test]
fn partitioned_sessions_match_with_streaming_eviction() {
    compare(EvictionPolicy::Streaming);
}

#[test]
fn partitioned_sessions_match_with_exact_eviction() {
    compare(EvictionPolicy::Exact);
}
