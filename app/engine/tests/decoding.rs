//! Real-time decoding on the committed test models with the real ONNX Runtime (CPU):
//! speculation changes no token, exact KV reuse matches a fresh prefill, streaming
//! eviction re-positions keys correctly, reuse prefills a small fraction of the
//! context, scripted actions need at most half a pass per token, and chunks stream.
//!
//! The test models are random, so their unconstrained greedy output is not an
//! action; "identical to plain greedy" here means: constrained decoding with
//! speculation gives the same tokens as constrained decoding without it (same
//! mask, one token per forward pass). That masking leaves a valid greedy output
//! unchanged is checked without ONNX in `constrained_fuzz.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lumine_action::{StreamEvent, parse_turn};
use lumine_engine::bench::{ScriptedActions, synthetic_frame};
use lumine_engine::provider::ProviderOptions;
use lumine_engine::rope;
use lumine_engine::session::{AgentMode, AgentSession, EvictionPolicy, SessionOptions, TimedEvent};
use lumine_engine::speculative::{TurnOptions, TurnStats};
use lumine_engine::{CancelToken, Model};

/// Small frames keep the tests quick: 224x112 is 8x4 = 32 visual tokens.
const FRAME: (u32, u32) = (224, 112);

fn model(name: &str) -> Model {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(name);
    Model::load(&dir, &ProviderOptions::default(), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn session(
    model: &Model,
    mode: AgentMode,
    history: usize,
    eviction: EvictionPolicy,
) -> AgentSession {
    let mut s = AgentSession::new(
        model,
        SessionOptions {
            mode,
            history,
            eviction,
            max_thought_chars: 24,
            ..SessionOptions::default()
        },
    )
    .unwrap();
    s.set_instruction(Some("Follow the road to the next village.".to_owned()))
        .unwrap();
    s
}

fn step(s: &mut AgentSession, model: &mut Model, i: usize) -> lumine_engine::session::StepPrefill {
    let frame = synthetic_frame(FRAME.0, FRAME.1, i);
    s.begin_step(
        model,
        frame.as_ref_image(),
        Instant::now(),
        &CancelToken::default(),
    )
    .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Checks the streamed events of one turn: the mouse first, then chunks 0..6 in
/// order, equal to the parsed action, released no earlier than the previous one.
fn check_events(events: &[TimedEvent], turn: &lumine_action::Turn) {
    let mut chunks = Vec::new();
    let mut last_ms = 0.0;
    for e in events {
        assert!(e.since_capture_ms >= last_ms);
        last_ms = e.since_capture_ms;
        match &e.event {
            StreamEvent::Mouse { dx, .. } => {
                assert!(chunks.is_empty());
                assert_eq!(*dx, turn.action.dx);
            }
            StreamEvent::Chunk { index, chunk } => {
                assert_eq!(*index, chunks.len());
                chunks.push(*chunk);
            }
            _ => {}
        }
    }
    assert_eq!(chunks, turn.action.chunks);
}

#[test]
fn speculation_gives_the_tokens_of_plain_constrained_greedy() {
    for (name, mode) in [
        ("test-tiny", AgentMode::Instruction),
        ("test-flat", AgentMode::Instruction),
        ("test-tiny", AgentMode::Reasoning),
    ] {
        let mut model = model(name);
        let mut spec = session(&model, mode, 3, EvictionPolicy::Streaming);
        let mut plain = session(&model, mode, 3, EvictionPolicy::Streaming);
        let spec_options = TurnOptions::default();
        let plain_options = TurnOptions {
            max_draft_tokens: 0,
            ..TurnOptions::default()
        };
        let cancel = CancelToken::default();
        let (mut spec_stats, mut plain_stats) = (TurnStats::default(), TurnStats::default());
        for i in 0..7 {
            step(&mut spec, &mut model, i);
            step(&mut plain, &mut model, i);
            let drift = max_diff(spec.last_logits().unwrap(), plain.last_logits().unwrap());
            eprintln!("{name} {mode:?} step {i}: prefill logits differ by {drift:e}");
            let mut events = Vec::new();
            let a = spec
                .decode_turn(&mut model, &spec_options, &cancel, &mut |e| {
                    events.push(e.clone());
                })
                .unwrap();
            let b = plain
                .decode_turn(&mut model, &plain_options, &cancel, &mut |_| {})
                .unwrap();
            eprintln!(
                "  margins {} {}",
                a.decoded.min_margin, b.decoded.min_margin
            );
            assert_eq!(
                a.decoded.tokens, b.decoded.tokens,
                "{name} {mode:?} step {i}: {:?} vs {:?}",
                a.decoded.text, b.decoded.text
            );
            let parsed = parse_turn(&a.decoded.text, &model.keys).unwrap();
            assert_eq!(parsed, a.decoded.turn);
            check_events(&events, &a.decoded.turn);
            assert_eq!(a.chunk_ms.len(), 6);
            assert_eq!(a.decoded.chunk_passes.len(), 6);
            assert!(a.decoded.chunk_passes.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(
                b.decoded.stats.passes + 1,
                b.decoded.tokens.len(),
                "plain: one pass per token after the first"
            );
            spec_stats.add(&a.decoded.stats);
            plain_stats.add(&b.decoded.stats);
            assert_eq!(spec.token_ids(), plain.token_ids());
        }
        assert!(spec_stats.passes <= plain_stats.passes);
        eprintln!(
            "{name} {mode:?}: plain {} passes, speculative {} passes for {} tokens, acceptance {:.2}",
            plain_stats.passes,
            spec_stats.passes,
            spec_stats.tokens,
            spec_stats.acceptance_rate()
        );
    }
}

#[test]
fn exact_reuse_matches_a_fresh_prefill_across_evictions_and_flushes() {
    for name in ["test-tiny", "test-flat"] {
        let mut model = model(name);
        let cancel = CancelToken::default();
        let mut s = session(&model, AgentMode::Reasoning, 3, EvictionPolicy::Exact);
        let mut script = ScriptedActions::new(7);
        let mut worst = 0.0f32;
        for i in 0..9 {
            let before = s.steps();
            let report = step(&mut s, &mut model, i);
            // History 3; a thought (scripted after step 5, or the model's own) empties the window.
            assert_eq!(report.evicted, usize::from(before >= 3), "{name} step {i}");
            let reused = s.last_logits().unwrap().to_vec();
            let fresh = s.fresh_prefill_logits(&mut model, &cancel).unwrap();
            let diff = max_diff(&reused, &fresh);
            worst = worst.max(diff);
            assert!(
                diff <= 1e-4,
                "{name} step {i}: reuse differs from a fresh prefill by {diff}"
            );
            match i {
                // A thought flushes the window: the next step starts after it.
                5 => {
                    let text = format!(
                        "<|thought_start|>Go around the rock.<|thought_end|>{}",
                        script.next_text(&model.keys)
                    );
                    s.append_turn(&text).unwrap();
                    assert_eq!(s.steps(), 0);
                    assert_eq!(s.thought(), Some("Go around the rock."));
                }
                2 | 7 => {
                    s.append_turn(&script.next_text(&model.keys)).unwrap();
                }
                _ => {
                    s.decode_turn(&mut model, &TurnOptions::default(), &cancel, &mut |_| {})
                        .unwrap();
                }
            }
        }
        // A new instruction flushes too.
        s.set_instruction(Some("Open the chest.".to_owned()))
            .unwrap();
        step(&mut s, &mut model, 9);
        let diff = max_diff(
            s.last_logits().unwrap(),
            &s.fresh_prefill_logits(&mut model, &cancel).unwrap(),
        );
        assert!(diff <= 1e-4, "{name} after a new instruction: {diff}");
        eprintln!("{name}: exact reuse vs fresh prefill, largest logit difference {worst:e}");
    }
}

#[test]
fn rotating_cached_keys_equals_computing_them_at_shifted_positions() {
    // Attention under RoPE depends only on relative positions, so a sequence run at
    // positions p + delta has the same hidden states as at p, and its cached keys
    // are those at p rotated by delta: re-rotating by -delta must give the keys at p.
    let mut model = model("test-tiny");
    let cancel = CancelToken::default();
    let frame = synthetic_frame(FRAME.0, FRAME.1, 3);
    let pixels = model.preprocess(frame.as_ref_image()).unwrap();
    let features = model.encode_image(&pixels, &cancel).unwrap();
    let text = format!(
        "<|im_start|>user\n<|vision_start|>{}<|vision_end|>Go.<|im_end|>\n",
        "<|image_pad|>".repeat(pixels.num_image_tokens())
    );
    let ids = model.tokenizer.encode(&text).unwrap();
    let pad = model.manifest.tokens.image_pad;
    let first = ids.iter().position(|&i| i == pad).unwrap();
    let hidden = model.hidden_size();
    let mut embeds = model.embed_tokens(&ids).unwrap();
    embeds[first * hidden..first * hidden + features.len()].copy_from_slice(&features);
    let run = |model: &mut Model, start: i64| {
        let (rows, _) = rope::rope_positions_from(start, &ids, pad, &[pixels.grid_thw], 2).unwrap();
        let mut cache = model.new_cache().unwrap();
        let logits = model
            .forward(
                embeds.clone(),
                [&rows[0], &rows[1], &rows[2]],
                &mut cache,
                &cancel,
            )
            .unwrap();
        (cache, logits)
    };
    let (reference, ref_logits) = run(&mut model, 0);
    let delta = 1234;
    let (mut shifted, shifted_logits) = run(&mut model, delta);
    assert!(max_diff(&ref_logits, &shifted_logits) < 1e-3);
    let before = max_diff(
        &reference.layer_data(0, true).unwrap(),
        &shifted.layer_data(0, true).unwrap(),
    );
    shifted
        .rotate_keys(0, &model.rope_table(), [-delta; 3])
        .unwrap();
    for layer in 0..model.manifest.text.num_layers {
        let k = max_diff(
            &reference.layer_data(layer, true).unwrap(),
            &shifted.layer_data(layer, true).unwrap(),
        );
        let v = max_diff(
            &reference.layer_data(layer, false).unwrap(),
            &shifted.layer_data(layer, false).unwrap(),
        );
        assert!(
            k < 1e-3 && v < 1e-3,
            "layer {layer}: keys {k}, values {v} (before rotation {before})"
        );
    }
    assert!(
        before > 0.1,
        "the shift should have changed the keys ({before})"
    );
}

#[test]
fn streaming_eviction_keeps_positions_and_prefills_only_the_new_step() {
    let mut model = model("test-tiny");
    let cancel = CancelToken::default();
    let history = 10;
    let mut s = session(
        &model,
        AgentMode::Instruction,
        history,
        EvictionPolicy::Streaming,
    );
    let mut script = ScriptedActions::new(11);
    for i in 0..history + 3 {
        let report = step(&mut s, &mut model, i);
        assert_eq!(s.cached_len(), s.total_len());
        if i >= history {
            assert_eq!(report.evicted, 1);
            // Steady state: the previous turn's tail and the new frame only.
            assert!(
                report.prefilled_tokens * 8 <= report.context_tokens,
                "step {i}: prefilled {} of {}",
                report.prefilled_tokens,
                report.context_tokens
            );
            // Positions continue as get_rope_index computes them over the new context,
            // and the approximate logits stay finite.
            let fresh = s.fresh_prefill_logits(&mut model, &cancel).unwrap();
            let diff = max_diff(s.last_logits().unwrap(), &fresh);
            assert!(diff.is_finite());
            eprintln!(
                "step {i}: prefilled {} of {} tokens; streaming vs fresh logits {diff:.3e}",
                report.prefilled_tokens, report.context_tokens
            );
        }
        s.append_turn(&script.next_text(&model.keys)).unwrap();
    }
}

#[test]
fn scripted_actions_need_at_most_half_a_pass_per_token() {
    for name in ["test-tiny", "test-flat"] {
        let mut model = model(name);
        let cancel = CancelToken::default();
        let mut spec = session(&model, AgentMode::Instruction, 4, EvictionPolicy::Streaming);
        let mut plain = session(&model, AgentMode::Instruction, 4, EvictionPolicy::Streaming);
        let mut script = ScriptedActions::new(5);
        let (mut s_stats, mut p_stats) = (TurnStats::default(), TurnStats::default());
        for i in 0..8 {
            let text = script.next_text(&model.keys);
            let teacher = model.tokenizer.encode(&text).unwrap();
            step(&mut spec, &mut model, i);
            step(&mut plain, &mut model, i);
            let a = spec
                .decode_turn(
                    &mut model,
                    &TurnOptions {
                        teacher: Some(teacher.clone()),
                        ..TurnOptions::default()
                    },
                    &cancel,
                    &mut |_| {},
                )
                .unwrap();
            let b = plain
                .decode_turn(
                    &mut model,
                    &TurnOptions {
                        teacher: Some(teacher.clone()),
                        max_draft_tokens: 0,
                        ..TurnOptions::default()
                    },
                    &cancel,
                    &mut |_| {},
                )
                .unwrap();
            assert_eq!(a.decoded.tokens, teacher, "{name}: the script is followed");
            assert_eq!(b.decoded.tokens, teacher);
            s_stats.add(&a.decoded.stats);
            p_stats.add(&b.decoded.stats);
        }
        eprintln!(
            "{name} scripted: {} tokens, plain {} passes, speculative {} passes ({:.3} per token), acceptance {:.2}",
            s_stats.tokens,
            p_stats.passes,
            s_stats.passes,
            s_stats.passes_per_token(),
            s_stats.acceptance_rate()
        );
        assert!(s_stats.passes * 2 <= s_stats.tokens, "{name}: {s_stats:?}");
    }
}

#[test]
fn sampled_speculative_turns_parse_on_the_real_model() {
    let mut model = model("test-tiny");
    let cancel = CancelToken::default();
    let mut s = session(&model, AgentMode::Reasoning, 2, EvictionPolicy::Streaming);
    let options = TurnOptions {
        sampling: lumine_engine::sampler::Sampling::TopP {
            temperature: 0.8,
            top_p: 0.95,
            seed: 9,
        },
        ..TurnOptions::default()
    };
    for i in 0..4 {
        step(&mut s, &mut model, i);
        let t = s
            .decode_turn(&mut model, &options, &cancel, &mut |_| {})
            .unwrap();
        assert_eq!(
            parse_turn(&t.decoded.text, &model.keys).unwrap(),
            t.decoded.turn
        );
    }
}

#[test]
fn a_cancelled_turn_leaves_the_session_as_it_was() {
    let mut model = model("test-tiny");
    let mut a = session(&model, AgentMode::Instruction, 2, EvictionPolicy::Streaming);
    let mut b = session(&model, AgentMode::Instruction, 2, EvictionPolicy::Streaming);
    let options = TurnOptions::default();
    for i in 0..3 {
        step(&mut a, &mut model, i);
        step(&mut b, &mut model, i);
        let cancel = CancelToken::default();
        let stop = cancel.clone();
        let err = a
            .decode_turn(&mut model, &options, &cancel, &mut |_| stop.cancel())
            .unwrap_err();
        assert!(
            matches!(err, lumine_engine::EngineError::Cancelled),
            "{err}"
        );
        assert_eq!(a.token_ids(), b.token_ids());
        assert_eq!(a.cached_len(), b.cached_len());
        cancel.reset();
        let ta = a
            .decode_turn(&mut model, &options, &cancel, &mut |_| {})
            .unwrap();
        let tb = b
            .decode_turn(&mut model, &options, &cancel, &mut |_| {})
            .unwrap();
        assert_eq!(ta.decoded.tokens, tb.decoded.tokens);
    }
}
