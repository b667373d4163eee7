//! `lumine bench decode`: real-time decoding measured on a synthetic game.
//!
//! Each run drives an [`AgentSession`] through `steps` steps of synthetic frames
//! (gradients that move from step to step, at the manifest's frame size or an
//! override) and measures, per history length:
//!
//! * tokens prefilled per step with KV reuse, against the context length (what a
//!   prefill without reuse runs), for both eviction policies;
//! * forward passes per action, plain (one token per pass) against speculative,
//!   on the model's own constrained output (with a random test model the drafts
//!   are mostly wrong) and on scripted, typical actions replayed by teacher forcing
//!   through the same model (holds, a mouse triple, 0-2 keys per chunk);
//! * first-chunk latency from frame capture and the gaps between chunk releases
//!   (p50 / p90 / max).

use std::time::Instant;

use lumine_action::{Action, Chunk, Key, KeyVocabulary};
use lumine_vision::RgbImage;
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::EngineError;
use crate::model::{CancelToken, Model};
use crate::session::{AgentSession, EvictionPolicy, SessionOptions, StepTurn};
use crate::speculative::{TurnOptions, TurnStats};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// History lengths (steps kept in the window).
    pub histories: Vec<usize>,
    /// Steps per run.
    pub steps: usize,
    /// Frame size fed to the model (width, height).
    pub frame: (u32, u32),
    /// Most draft tokens per pass in the speculative runs.
    pub max_draft_tokens: usize,
    /// Seed of the scripted actions.
    pub seed: u64,
}

/// A latency distribution, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// The distribution of `samples` (nearest-rank percentiles).
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank =
            |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
        Self {
            n: sorted.len(),
            p50: rank(0.5),
            p90: rank(0.9),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Prefill with reuse under one eviction policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrefillRow {
    /// `exact` or `streaming`.
    pub policy: String,
    /// Mean tokens prefilled per steady-state step (the window full and evicting,
    /// or every step after the first when the run is shorter than the history).
    pub reuse_tokens: f64,
    /// Mean context length at those steps: tokens a prefill without reuse runs.
    pub no_reuse_tokens: f64,
    /// `reuse_tokens / no_reuse_tokens`.
    pub ratio: f64,
    /// Steady-state steps measured.
    pub steady_steps: usize,
    /// Prefill time per steady-state step (embedding + decoder), milliseconds.
    pub prefill_ms: Distribution,
    /// Eviction cache edits per steady-state step, milliseconds.
    pub evict_ms: Distribution,
}

/// Decoding one way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecodeRow {
    /// `model` (the model's own constrained output) or `scripted` (typical
    /// actions, teacher forced).
    pub actions: String,
    /// Whether drafts were proposed.
    pub speculative: bool,
    /// Mean tokens per action.
    pub tokens_per_action: f64,
    /// Mean forward passes per action.
    pub passes_per_action: f64,
    /// Passes / tokens.
    pub passes_per_token: f64,
    /// Accepted / proposed draft tokens.
    pub acceptance_rate: f64,
    /// Mean forward passes until the first chunk's release (after the prefill).
    pub passes_to_first_chunk: f64,
    /// Frame capture to first chunk release, milliseconds.
    pub first_chunk_ms: Distribution,
    /// Gaps between consecutive chunk releases, milliseconds.
    pub chunk_gap_ms: Distribution,
    /// Decoding time per action, milliseconds.
    pub decode_ms: Distribution,
    /// The tokens equal the plain run's, step for step (speculative rows).
    pub same_tokens_as_plain: Option<bool>,
}

/// Everything measured for one history length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryReport {
    /// Steps kept in the window.
    pub history: usize,
    /// Per eviction policy.
    pub prefill: Vec<PrefillRow>,
    /// Per way of decoding.
    pub decode: Vec<DecodeRow>,
}

/// The whole benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Model name (manifest).
    pub model: String,
    /// Execution provider.
    pub provider: String,
    /// Frame size.
    pub frame: (u32, u32),
    /// Visual tokens per frame.
    pub image_tokens: usize,
    /// Steps per run.
    pub steps: usize,
    /// Draft limit.
    pub max_draft_tokens: usize,
    /// One entry per history length.
    pub histories: Vec<HistoryReport>,
}

/// A frame of the synthetic game: gradients that drift with the step.
pub fn synthetic_frame(width: u32, height: u32, step: usize) -> RgbImage {
    let s = step as u32;
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            data.push(((x * 255 / width.max(1) + s * 17) % 256) as u8);
            data.push(((y * 255 / height.max(1) + s * 29) % 256) as u8);
            data.push(((x + y + s * 7) % 256) as u8);
        }
    }
    // The buffer has exactly width * height * 3 bytes.
    RgbImage::new(width, height, data).unwrap_or_else(|_| RgbImage::zeroed(width, height))
}

/// Typical scripted actions: a mouse triple, holds carried across chunks and
/// steps, 0-2 keys per chunk, occasional changes.
#[derive(Debug, Clone)]
pub struct ScriptedActions {
    rng: ChaCha8Rng,
    held: Vec<Key>,
}

impl ScriptedActions {
    /// Actions from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            held: vec![Key::W],
        }
    }

    fn pick_keys(&mut self) -> Vec<Key> {
        const SETS: &[&[Key]] = &[
            &[Key::W],
            &[Key::Shift, Key::W],
            &[],
            &[Key::A],
            &[Key::W, Key::D],
            &[Key::MouseLeft],
            &[Key::S],
        ];
        SETS[self.rng.random_range(0..SETS.len())].to_vec()
    }

    /// The next action.
    pub fn next_action(&mut self) -> Action {
        if self.rng.random_range(0..4) == 0 {
            self.held = self.pick_keys();
        }
        let mut chunks = [Chunk::EMPTY; 6];
        let change_at = if self.rng.random_range(0..3) == 0 {
            self.rng.random_range(1..6)
        } else {
            6
        };
        for (i, chunk) in chunks.iter_mut().enumerate() {
            if i == change_at {
                if self.rng.random_range(0..2) == 0 {
                    // A tap (jump, interact) on top of the hold, for one chunk.
                    let tap = if self.rng.random_range(0..2) == 0 {
                        Key::Space
                    } else {
                        Key::F
                    };
                    let mut keys = self.held.clone();
                    keys.truncate(1);
                    keys.push(tap);
                    *chunk = Chunk::new(&keys).unwrap_or(Chunk::EMPTY);
                    continue;
                }
                self.held = self.pick_keys();
            }
            *chunk = Chunk::new(&self.held).unwrap_or(Chunk::EMPTY);
        }
        let dx = self.rng.random_range(-150..=150);
        let dy = self.rng.random_range(-30..=30);
        let dz = if self.rng.random_range(0..20) == 0 {
            1
        } else {
            0
        };
        Action::new(dx, dy, dz, chunks).unwrap_or(Action::IDLE)
    }

    /// The next action as model text, with the markers.
    pub fn next_text(&mut self, keys: &KeyVocabulary) -> String {
        lumine_action::Turn::from(self.next_action()).format_model(keys)
    }
}

/// One run's per-step measurements.
struct RunResult {
    prefill: Vec<crate::session::StepPrefill>,
    turns: Vec<StepTurn>,
}

fn run(
    model: &mut Model,
    config: &BenchConfig,
    history: usize,
    policy: EvictionPolicy,
    speculative: bool,
    scripted: bool,
) -> Result<RunResult, EngineError> {
    let cancel = CancelToken::default();
    let mut session = AgentSession::new(
        model,
        SessionOptions {
            history,
            eviction: policy,
            ..SessionOptions::default()
        },
    )?;
    session.set_instruction(Some("Follow the road to the next village.".to_owned()))?;
    let mut script = ScriptedActions::new(config.seed);
    let mut result = RunResult {
        prefill: Vec::new(),
        turns: Vec::new(),
    };
    for step in 0..config.steps {
        let frame = synthetic_frame(config.frame.0, config.frame.1, step);
        let captured_at = Instant::now();
        result.prefill.push(session.begin_step(
            model,
            frame.as_ref_image(),
            captured_at,
            &cancel,
        )?);
        let teacher = if scripted {
            Some(model.tokenizer.encode(&script.next_text(&model.keys))?)
        } else {
            None
        };
        let options = TurnOptions {
            max_draft_tokens: if speculative {
                config.max_draft_tokens
            } else {
                0
            },
            teacher,
            ..TurnOptions::default()
        };
        result
            .turns
            .push(session.decode_turn(model, &options, &cancel, &mut |_| {})?);
    }
    Ok(result)
}

fn steady(history: usize, steps: usize) -> std::ops::Range<usize> {
    if steps > history {
        history..steps
    } else {
        1.min(steps)..steps
    }
}

fn prefill_row(policy: EvictionPolicy, result: &RunResult, history: usize) -> PrefillRow {
    let range = steady(history, result.prefill.len());
    let rows = &result.prefill[range];
    let n = rows.len().max(1) as f64;
    let reuse = rows.iter().map(|p| p.prefilled_tokens as f64).sum::<f64>() / n;
    let full = rows.iter().map(|p| p.context_tokens as f64).sum::<f64>() / n;
    PrefillRow {
        policy: policy.to_string(),
        reuse_tokens: reuse,
        no_reuse_tokens: full,
        ratio: if full > 0.0 { reuse / full } else { 0.0 },
        steady_steps: rows.len(),
        prefill_ms: Distribution::of(&rows.iter().map(|p| p.prefill_ms).collect::<Vec<_>>()),
        evict_ms: Distribution::of(&rows.iter().map(|p| p.evict_ms).collect::<Vec<_>>()),
    }
}

fn decode_row(
    actions: &str,
    speculative: bool,
    result: &RunResult,
    plain: Option<&RunResult>,
) -> DecodeRow {
    let mut total = TurnStats::default();
    let mut first = Vec::new();
    let mut gaps = Vec::new();
    let mut decode = Vec::new();
    let mut to_first = 0usize;
    for turn in &result.turns {
        to_first += turn.decoded.chunk_passes.first().copied().unwrap_or(0);
        total.add(&turn.decoded.stats);
        first.extend(turn.first_chunk_ms());
        gaps.extend(turn.chunk_ms.windows(2).map(|w| w[1] - w[0]));
        decode.push(turn.decode_ms);
    }
    let n = result.turns.len().max(1) as f64;
    DecodeRow {
        actions: actions.to_owned(),
        speculative,
        tokens_per_action: total.tokens as f64 / n,
        passes_per_action: total.passes as f64 / n,
        passes_per_token: total.passes_per_token(),
        acceptance_rate: total.acceptance_rate(),
        passes_to_first_chunk: to_first as f64 / n,
        first_chunk_ms: Distribution::of(&first),
        chunk_gap_ms: Distribution::of(&gaps),
        decode_ms: Distribution::of(&decode),
        same_tokens_as_plain: plain.map(|p| {
            p.turns.len() == result.turns.len()
                && p.turns
                    .iter()
                    .zip(&result.turns)
                    .all(|(a, b)| a.decoded.tokens == b.decoded.tokens)
        }),
    }
}

/// Runs the benchmark; `progress` hears about each run as it starts.
pub fn run_bench(
    model: &mut Model,
    config: &BenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, EngineError> {
    if config.steps == 0 || config.histories.is_empty() {
        return Err(EngineError::Input(
            "the benchmark needs steps and history lengths".to_owned(),
        ));
    }
    let image_tokens = {
        let frame = synthetic_frame(config.frame.0, config.frame.1, 0);
        model.preprocess(frame.as_ref_image())?.num_image_tokens()
    };
    let mut histories = Vec::new();
    for &history in &config.histories {
        let mut go = |label: &str, policy, speculative, scripted| {
            progress(&format!("history {history}: {label}"));
            run(model, config, history, policy, speculative, scripted)
        };
        let plain = go(
            "model actions, plain",
            EvictionPolicy::Streaming,
            false,
            false,
        )?;
        let spec = go(
            "model actions, speculative",
            EvictionPolicy::Streaming,
            true,
            false,
        )?;
        let script_plain = go(
            "scripted actions, plain",
            EvictionPolicy::Streaming,
            false,
            true,
        )?;
        let script_spec = go(
            "scripted actions, speculative",
            EvictionPolicy::Streaming,
            true,
            true,
        )?;
        let exact = go("exact eviction", EvictionPolicy::Exact, true, false)?;
        histories.push(HistoryReport {
            history,
            prefill: vec![
                prefill_row(EvictionPolicy::Exact, &exact, history),
                prefill_row(EvictionPolicy::Streaming, &spec, history),
            ],
            decode: vec![
                decode_row("model", false, &plain, None),
                decode_row("model", true, &spec, Some(&plain)),
                decode_row("scripted", false, &script_plain, None),
                decode_row("scripted", true, &script_spec, Some(&script_plain)),
            ],
        });
    }
    Ok(BenchReport {
        model: model.manifest.name.clone(),
        provider: model.provider.to_string(),
        frame: config.frame,
        image_tokens,
        steps: config.steps,
        max_draft_tokens: config.max_draft_tokens,
        histories,
    })
}

impl BenchReport {
    /// The report as readable tables.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "model {} on {}, frame {}x{} ({} visual tokens), {} steps, drafts up to {} tokens",
            self.model,
            self.provider,
            self.frame.0,
            self.frame.1,
            self.image_tokens,
            self.steps,
            self.max_draft_tokens
        );
        for h in &self.histories {
            let _ = writeln!(out, "\nhistory {}", h.history);
            let _ = writeln!(
                out,
                "  {:<10} {:>13} {:>15} {:>7} {:>7} {:>22} {:>22}",
                "eviction",
                "reuse tok/st",
                "no-reuse tok/st",
                "ratio",
                "steps",
                "prefill ms p50/p90/max",
                "evict ms p50/p90/max"
            );
            for p in &h.prefill {
                let _ = writeln!(
                    out,
                    "  {:<10} {:>13.1} {:>15.1} {:>7.3} {:>7} {:>22} {:>22}",
                    p.policy,
                    p.reuse_tokens,
                    p.no_reuse_tokens,
                    p.ratio,
                    p.steady_steps,
                    triple(&p.prefill_ms),
                    triple(&p.evict_ms)
                );
            }
            let _ = writeln!(
                out,
                "  {:<9} {:<6} {:>8} {:>8} {:>8} {:>7} {:>11} {:>27} {:>25} {:>5}",
                "actions",
                "decode",
                "tok/act",
                "pass/act",
                "pass/tok",
                "accept",
                "pass->chunk",
                "first chunk ms p50/p90/max",
                "chunk gap ms p50/p90/max",
                "same"
            );
            for d in &h.decode {
                let _ = writeln!(
                    out,
                    "  {:<9} {:<6} {:>8.1} {:>8.1} {:>8.3} {:>7.3} {:>11.1} {:>27} {:>25} {:>5}",
                    d.actions,
                    if d.speculative { "spec" } else { "plain" },
                    d.tokens_per_action,
                    d.passes_per_action,
                    d.passes_per_token,
                    d.acceptance_rate,
                    d.passes_to_first_chunk,
                    triple(&d.first_chunk_ms),
                    triple(&d.chunk_gap_ms),
                    match d.same_tokens_as_plain {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "-",
                    }
                );
            }
        }
        out
    }
}

fn triple(d: &Distribution) -> String {
    format!("{:.1}/{:.1}/{:.1}", d.p50, d.p90, d.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = Distribution::of(&[5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!((d.n, d.p50, d.p90, d.max), (10, 5.0, 9.0, 10.0));
        assert_eq!(Distribution::of(&[]), Distribution::default());
    }

    #[test]
    fn scripted_actions_are_valid_and_mostly_held() {
        let keys = KeyVocabulary::default();
        let mut script = ScriptedActions::new(3);
        let mut holds = 0;
        for _ in 0..200 {
            let action = script.next_action();
            action.validate_for(&keys).unwrap();
            holds += action.chunks.windows(2).filter(|w| w[0] == w[1]).count();
            let text = lumine_action::Turn::from(action).format_model(&keys);
            assert!(lumine_action::parse_turn(&text, &keys).is_ok(), "{text}");
            assert!(action.chunks.iter().all(|c| c.len() <= 2));
        }
        assert!(holds > 200 * 5 * 3 / 4, "{holds}");
    }

    #[test]
    fn frames_change_per_step() {
        let a = synthetic_frame(56, 28, 0);
        let b = synthetic_frame(56, 28, 1);
        assert_eq!(a.data.len(), 56 * 28 * 3);
        assert_ne!(a.data, b.data);
    }
}
