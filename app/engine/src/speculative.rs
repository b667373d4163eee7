//! Decoding one turn under the grammar, with draft-free speculation.
//!
//! Each forward pass feeds the token just chosen plus a *draft*: text the grammar
//! forces (` ; ` after the scroll number, `<|action_end|>` after a full sixth
//! group, `<|action_start|>` after a thought) and text it merely allows but that is
//! likely (SPEC 5.3): the previous chunk's key group repeated, since holds are the
//! common case, with ` ;` closing each group and `0` for the scroll wheel. The
//! pass returns logits for every fed position, so the draft is verified at once:
//!
//! * greedy: draft token `i` is accepted while it is what the masked argmax would
//!   have chosen at that position; the first mismatch is replaced by that argmax
//!   (so every pass yields at least one token), the cache entries of the rejected
//!   rest are dropped ([`TokenModel::rollback`]), and the output is token for token
//!   the output of one-token-per-pass constrained greedy decoding;
//! * sampled: draft token `d` is accepted with probability `p(d)` (the masked,
//!   temperature- and top-p-processed distribution); on rejection the token is
//!   drawn from `p` with `d` removed and renormalised. With a deterministic
//!   proposal this is standard speculative rejection sampling: every emitted token
//!   is distributed exactly as plain sampling would draw it.
//!
//! A token with a single allowed continuation costs nothing to verify: the mask
//! leaves the model no choice, so it is always accepted.
//!
//! The decoder runs against [`TokenModel`], so the same code drives ONNX Runtime
//! ([`crate::session::AgentSession`]) and the fakes of the property tests.

use lumine_action::{ACTION_END, ACTION_START, KeyVocabulary, StreamEvent, StreamParser, Turn};
use rand::RngExt as _;
use rand_chacha::ChaCha8Rng;

use crate::constrained::{ConstrainedState, TokenGrammar, TokenMask};
use crate::error::EngineError;
use crate::sampler::Sampling;
use crate::tokenizer::Tokenizer;

/// A language model seen as a function from the tokens fed so far to logits.
pub trait TokenModel {
    /// Runs the model on `tokens` after everything fed so far; returns one row of
    /// logits per token, `[tokens.len() * vocab]`: row `i` predicts the token after
    /// `tokens[i]`.
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError>;

    /// Forgets the last `n` tokens fed (a rejected draft).
    fn rollback(&mut self, n: usize) -> Result<(), EngineError>;
}

/// How to decode a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOptions {
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Most draft tokens fed with each chosen token (0: one token per pass, no
    /// speculation).
    pub max_draft_tokens: usize,
    /// Upper bound on the turn's tokens (thought included); a turn that does not
    /// finish within it is an error. A thought still open when only
    /// [`ACTION_RESERVE_TOKENS`] are left is closed, so the action fits.
    pub max_tokens: usize,
    /// Teacher forcing: while the turn so far equals a prefix of these tokens, the
    /// next one gets the largest logit (if the grammar allows it). For replaying
    /// recorded actions through the real model and measuring speculation on them.
    pub teacher: Option<Vec<u32>>,
}

impl Default for TurnOptions {
    /// Greedy, drafts of up to 16 tokens, 4096 tokens at most (a safety net: the
    /// grammar bounds a turn, e.g. a 512-character thought is at most 2048
    /// byte-level tokens).
    fn default() -> Self {
        Self {
            sampling: Sampling::Greedy,
            max_draft_tokens: 16,
            max_tokens: 4096,
            teacher: None,
        }
    }
}

/// What speculation did during one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Tokens in the turn.
    pub tokens: usize,
    /// Decoder forward passes (the prefill that produced the first logits is not counted).
    pub passes: usize,
    /// Tokens fed in those passes, drafts included.
    pub fed: usize,
    /// Draft tokens proposed.
    pub drafted: usize,
    /// Draft tokens accepted.
    pub accepted: usize,
}

impl TurnStats {
    /// Accepted / proposed draft tokens (0 when nothing was proposed).
    pub fn acceptance_rate(&self) -> f64 {
        if self.drafted == 0 {
            0.0
        } else {
            self.accepted as f64 / self.drafted as f64
        }
    }

    /// Forward passes per token of the turn.
    pub fn passes_per_token(&self) -> f64 {
        self.passes as f64 / self.tokens.max(1) as f64
    }

    /// Adds another turn's counts.
    pub fn add(&mut self, other: &Self) {
        self.tokens += other.tokens;
        self.passes += other.passes;
        self.fed += other.fed;
        self.drafted += other.drafted;
        self.accepted += other.accepted;
    }
}

/// A decoded turn.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTurn {
    /// The turn's tokens, `<|action_end|>` included.
    pub tokens: Vec<u32>,
    /// How many of them the model has been fed (their keys and values are in the
    /// cache): all but the last, or all when the last came as an accepted draft.
    pub fed: usize,
    /// The text.
    pub text: String,
    /// The parsed turn.
    pub turn: Turn,
    /// Speculation counters.
    pub stats: TurnStats,
    /// Greedy decoding: the smallest gap between the chosen token's logit and the
    /// best other allowed one over the turn's decisions (how close the closest
    /// call was; a gap within floating-point noise can flip between a one-token
    /// pass and a multi-token verification). Infinite when every decision was forced.
    pub min_margin: f32,
    /// For each chunk 0..6, the forward passes run when it was released (the
    /// prefill that gave the first logits not counted).
    pub chunk_passes: Vec<usize>,
}

/// The random state of sampled decoding, kept from turn to turn (the sampling
/// mode itself comes from [`TurnOptions::sampling`]; its seed seeds this state):
/// the same seeded sampler plain decoding uses.
pub type TurnSampler = crate::sampler::Sampler;

/// The distribution sampled decoding draws from: the masked logits, divided by the
/// temperature, softmaxed, cut to the smallest most-likely set reaching `top_p`
/// (as [`crate::sampler::Sampler`] does without a mask), renormalised; (id, p),
/// most likely first.
pub fn masked_distribution(
    logits: &[f32],
    mask: &TokenMask,
    temperature: f32,
    top_p: f32,
) -> Vec<(u32, f64)> {
    let ids = mask.ids();
    let t = f64::from(temperature.max(1e-6));
    let value = |id: u32| {
        logits
            .get(id as usize)
            .copied()
            .unwrap_or(f32::NEG_INFINITY)
    };
    let max = ids
        .iter()
        .map(|&id| value(id))
        .filter(|v| !v.is_nan())
        .fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<(u32, f64)> = ids
        .iter()
        .map(|&id| {
            let v = value(id);
            let p = if v.is_nan() || max == f32::NEG_INFINITY {
                0.0
            } else {
                (f64::from(v - max) / t).exp()
            };
            (id, p)
        })
        .collect();
    let total: f64 = probs.iter().map(|&(_, p)| p).sum();
    if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        // Nothing has weight (all -inf): fall back to the first allowed id.
        return ids.first().map(|&id| vec![(id, 1.0)]).unwrap_or_default();
    }
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0;
    let mut mass = 0.0;
    for &(_, p) in &probs {
        kept += 1;
        mass += p / total;
        if mass >= f64::from(top_p) {
            break;
        }
    }
    probs.truncate(kept.max(1));
    probs.retain(|&(_, p)| p > 0.0);
    let kept_total: f64 = probs.iter().map(|&(_, p)| p).sum();
    for entry in &mut probs {
        entry.1 /= kept_total;
    }
    probs
}

fn draw(rng: &mut ChaCha8Rng, probs: &[(u32, f64)]) -> Option<u32> {
    let u: f64 = rng.random();
    let mut acc = 0.0;
    for &(id, p) in probs {
        acc += p;
        if u < acc {
            return Some(id);
        }
    }
    // Rounding left a sliver above the last cumulative sum.
    probs.last().map(|&(id, _)| id)
}

/// Proposes drafts: forced text plus the likely continuation of the action.
#[derive(Debug, Clone, Copy)]
pub struct Proposer<'a> {
    tokenizer: &'a Tokenizer,
    keys: &'a KeyVocabulary,
}

impl<'a> Proposer<'a> {
    /// A proposer tokenising drafts with `tokenizer`, reading key names with `keys`.
    pub fn new(tokenizer: &'a Tokenizer, keys: &'a KeyVocabulary) -> Self {
        Self { tokenizer, keys }
    }

    /// The draft after `turn_text` (the turn so far, in `state`): at most `max`
    /// tokens, each allowed by the grammar. `previous_group` is the key names of the
    /// previous action's sixth chunk (what the first chunk most likely holds).
    pub fn propose(
        &self,
        grammar: &mut TokenGrammar,
        state: ConstrainedState,
        turn_text: &str,
        previous_group: &[String],
        max: usize,
    ) -> Vec<u32> {
        if max == 0 || state.has_pending_bytes() || grammar.is_accepting(state) {
            return Vec::new();
        }
        let text = self.draft_text(grammar, state, turn_text, previous_group);
        if text.is_empty() {
            return Vec::new();
        }
        let Ok(ids) = self.tokenizer.encode(&text) else {
            return Vec::new();
        };
        let mut s = state;
        let mut draft = Vec::new();
        for id in ids {
            if draft.len() == max || grammar.is_accepting(s) {
                break;
            }
            match grammar.advance(s, id) {
                Some(next) => {
                    s = next;
                    draft.push(id);
                }
                None => break,
            }
        }
        draft
    }

    /// The draft as text.
    fn draft_text(
        &self,
        grammar: &TokenGrammar,
        state: ConstrainedState,
        turn_text: &str,
        previous_group: &[String],
    ) -> String {
        let g = grammar.grammar();
        let mut gs = state.grammar();
        let mut draft = g.forced(gs);
        let Some(next) = g.advance(gs, &draft) else {
            return String::new();
        };
        gs = next;
        if gs.in_thought() {
            return draft;
        }
        let mut full = format!("{turn_text}{draft}");
        if at_scroll_start(&full) {
            // The scroll wheel is almost always still.
            if let Some(next) = g.advance(gs, "0") {
                let forced = g.forced(next);
                if g.advance(next, &forced).is_some() {
                    draft.push('0');
                    draft.push_str(&forced);
                    full = format!("{turn_text}{draft}");
                }
            }
        }
        if let Some(rest) = predict_groups(&full, previous_group, self.keys) {
            draft.push_str(&rest);
        }
        draft
    }
}

/// The action part of a turn's text (after `<|action_start|>`), if it has begun.
fn action_part(text: &str) -> Option<&str> {
    text.rfind(ACTION_START)
        .map(|at| &text[at + ACTION_START.len()..])
}

/// True after `DX DY ` (the scroll number comes next).
fn at_scroll_start(text: &str) -> bool {
    action_part(text).is_some_and(|a| {
        let parts: Vec<&str> = a.split(' ').collect();
        !a.contains(';') && parts.len() == 3 && parts[2].is_empty()
    })
}

/// The rest of the action after `full`, predicting that each group repeats the
/// previous one (the current group: the previous chunk, or `previous_group` for
/// the first; the later groups: the current one). `None` when the text is not in
/// the key groups or a name is still being written that the prediction does not
/// explain.
fn predict_groups(full: &str, previous_group: &[String], keys: &KeyVocabulary) -> Option<String> {
    let action = action_part(full)?;
    if action.contains(ACTION_END) {
        return None;
    }
    let parts: Vec<&str> = action.split(" ;").collect();
    if parts.len() < 2 || parts.len() > 7 {
        return None;
    }
    let group = parts.len() - 2;
    let current = parts[parts.len() - 1];
    let reference: Vec<&str> = if group == 0 {
        previous_group.iter().map(String::as_str).collect()
    } else {
        parts[group].split(' ').filter(|n| !n.is_empty()).collect()
    };
    let as_text = |names: &[&str]| -> String { names.iter().map(|n| format!(" {n}")).collect() };
    let reference_text = as_text(&reference);
    let target = if reference_text.starts_with(current) {
        reference_text
    } else {
        // The model left the reference: close the group with what it wrote, if the
        // last name is complete.
        let written: Vec<&str> = current.split(' ').filter(|n| !n.is_empty()).collect();
        if !current.ends_with(' ') && written.last().is_some_and(|n| keys.lookup(n).is_none()) {
            return None;
        }
        as_text(&written)
    };
    let close = |g: usize| if g < 5 { " ;" } else { ACTION_END };
    let mut out = if let Some(rest) = target.strip_prefix(current) {
        format!("{rest}{}", close(group))
    } else if current.strip_suffix(' ') == Some(target.as_str()) && group < 5 {
        ";".to_owned()
    } else {
        return None;
    };
    for g in group + 1..6 {
        out.push_str(&target);
        out.push_str(close(g));
    }
    Some(out)
}

/// Tokens of `max_tokens` kept for the action: a thought still open when
/// only these are left gets `<|thought_end|>` as soon as the grammar allows it
/// (a character split over tokens is finished first). The longest action
/// (six chunks of several keys, three numbers) is about 50 tokens.
pub const ACTION_RESERVE_TOKENS: usize = 64;

/// What the decoder needs to know about the turns before this one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnContext {
    /// Key names of the previous action's sixth chunk (empty on the first step).
    pub previous_group: Vec<String>,
}

/// The decoder's running state for one turn.
struct Run<'a> {
    grammar: &'a mut TokenGrammar,
    options: &'a TurnOptions,
    sampler: &'a mut TurnSampler,
    vocab: usize,
    tokens: Vec<u32>,
    bytes: Vec<u8>,
    /// Bytes of `bytes` given to the parser (whole characters only).
    parsed: usize,
    parser: StreamParser,
    turn: Option<Turn>,
    events: Vec<StreamEvent>,
    min_margin: f32,
    /// Forward passes so far, and at each chunk's release.
    passes: usize,
    chunk_passes: Vec<usize>,
}

/// Outcome of checking one draft token.
enum Verdict {
    Accept,
    Replace(u32),
}

impl Run<'_> {
    /// The logits row for the next token in `state`: teacher forcing applied,
    /// and `<|thought_end|>` forced when the thought would leave the action too
    /// few tokens.
    fn row<'r>(
        &mut self,
        state: ConstrainedState,
        row: &'r [f32],
        scratch: &'r mut Vec<f32>,
    ) -> &'r [f32] {
        let k = self.tokens.len();
        let forced = match &self.options.teacher {
            Some(teacher) if teacher[..k.min(teacher.len())] == self.tokens[..] => {
                teacher.get(k).copied()
            }
            _ => None,
        };
        let forced = forced.or_else(|| self.close_thought(state));
        match forced {
            Some(t) if (t as usize) < row.len() => {
                scratch.clear();
                scratch.extend_from_slice(row);
                let max = row
                    .iter()
                    .copied()
                    .filter(|v| !v.is_nan())
                    .fold(f32::MIN, f32::max);
                scratch[t as usize] = max.max(0.0) + 1e4;
                scratch
            }
            _ => row,
        }
    }

    /// `<|thought_end|>` when a thought is open, the grammar allows closing it
    /// here, and only the action's reserve of the token budget is left.
    fn close_thought(&mut self, state: ConstrainedState) -> Option<u32> {
        if !state.grammar().in_thought()
            || self.tokens.len() + ACTION_RESERVE_TOKENS < self.options.max_tokens
        {
            return None;
        }
        let end = self.grammar.index().atomic_id(lumine_action::THOUGHT_END)?;
        self.grammar.advance(state, end).map(|_| end)
    }

    fn choose(&mut self, state: ConstrainedState, row: &[f32]) -> Result<u32, EngineError> {
        let mut scratch = Vec::new();
        let row = self.row(state, row, &mut scratch);
        let chosen = match self.options.sampling {
            Sampling::Greedy => {
                let chosen = self.grammar.greedy(state, row);
                if let Some(c) = chosen {
                    self.note_margin(state, row, c);
                }
                chosen
            }
            Sampling::TopP {
                temperature, top_p, ..
            } => {
                let mask = self.grammar.mask(state);
                let probs = masked_distribution(row, &mask, temperature, top_p);
                draw(&mut self.sampler.rng, &probs)
            }
        };
        chosen.ok_or_else(|| dead_end(&self.bytes))
    }

    fn verify(
        &mut self,
        state: ConstrainedState,
        row: &[f32],
        draft: u32,
    ) -> Result<Verdict, EngineError> {
        let mut scratch = Vec::new();
        let row = self.row(state, row, &mut scratch);
        match self.options.sampling {
            Sampling::Greedy => {
                let chosen = self
                    .grammar
                    .greedy(state, row)
                    .ok_or_else(|| dead_end(&self.bytes))?;
                self.note_margin(state, row, chosen);
                Ok(if chosen == draft {
                    Verdict::Accept
                } else {
                    Verdict::Replace(chosen)
                })
            }
            Sampling::TopP {
                temperature, top_p, ..
            } => {
                let mask = self.grammar.mask(state);
                let mut probs = masked_distribution(row, &mask, temperature, top_p);
                let p = probs
                    .iter()
                    .find(|&&(id, _)| id == draft)
                    .map_or(0.0, |&(_, p)| p);
                let u: f64 = self.sampler.rng.random();
                if u < p {
                    return Ok(Verdict::Accept);
                }
                // The residual of a point-mass proposal: p without the draft, renormalised.
                probs.retain(|&(id, _)| id != draft);
                let rest: f64 = probs.iter().map(|&(_, q)| q).sum();
                for entry in &mut probs {
                    entry.1 /= rest;
                }
                draw(&mut self.sampler.rng, &probs)
                    .map(Verdict::Replace)
                    .ok_or_else(|| dead_end(&self.bytes))
            }
        }
    }

    fn note_margin(&mut self, state: ConstrainedState, row: &[f32], chosen: u32) {
        if let Some(other) = self.grammar.runner_up(state, row, chosen) {
            let gap = row
                .get(chosen as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY)
                - other;
            if !gap.is_nan() {
                self.min_margin = self.min_margin.min(gap);
            }
        }
    }

    /// Appends a chosen token and reports what it completes.
    fn commit(
        &mut self,
        state: ConstrainedState,
        token: u32,
        on_event: &mut dyn FnMut(&StreamEvent),
    ) -> Result<ConstrainedState, EngineError> {
        let next = self.grammar.advance(state, token).ok_or_else(|| {
            EngineError::Decode(format!("token {token} chosen outside the grammar"))
        })?;
        self.tokens.push(token);
        self.bytes
            .extend_from_slice(self.grammar.index().bytes(token));
        let complete = match std::str::from_utf8(&self.bytes[self.parsed..]) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        if complete > 0 {
            let piece = String::from_utf8_lossy(&self.bytes[self.parsed..self.parsed + complete])
                .into_owned();
            self.parsed += complete;
            self.events.clear();
            let result = self.parser.push(&piece, &mut self.events);
            for event in &self.events {
                if matches!(event, StreamEvent::Chunk { .. }) {
                    self.chunk_passes.push(self.passes);
                }
                if let StreamEvent::End(turn) = event {
                    self.turn = Some(turn.clone());
                }
                on_event(event);
            }
            result.map_err(|e| {
                EngineError::Decode(format!(
                    "the grammar let through text the parser rejects: {e}"
                ))
            })?;
        }
        Ok(next)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn dead_end(bytes: &[u8]) -> EngineError {
    EngineError::Decode(format!(
        "no token of the vocabulary can continue {:?} under the grammar",
        String::from_utf8_lossy(bytes)
    ))
}

/// Decodes one turn under `grammar` from `first_logits` (the logits after the
/// prompt, whose last token the model has been fed), calling `on_event` with each
/// parser event the moment the token completing it is accepted (a chunk at its
/// closing `;`, the last one and the whole turn at `<|action_end|>`).
///
/// `proposer` is `None` or `options.max_draft_tokens == 0` for plain decoding (one
/// token per pass).
#[allow(clippy::too_many_arguments)]
pub fn decode_turn(
    model: &mut dyn TokenModel,
    grammar: &mut TokenGrammar,
    proposer: Option<&Proposer<'_>>,
    context: &TurnContext,
    first_logits: &[f32],
    options: &TurnOptions,
    sampler: &mut TurnSampler,
    on_event: &mut dyn FnMut(&StreamEvent),
) -> Result<DecodedTurn, EngineError> {
    let vocab = first_logits.len();
    let parser = StreamParser::new(grammar.grammar().vocabulary());
    let mut run = Run {
        grammar,
        options,
        sampler,
        vocab,
        tokens: Vec::new(),
        bytes: Vec::new(),
        parsed: 0,
        parser,
        turn: None,
        events: Vec::new(),
        min_margin: f32::INFINITY,
        passes: 0,
        chunk_passes: Vec::with_capacity(6),
    };
    let mut stats = TurnStats::default();
    let mut state = run.grammar.start();
    let mut next = run.choose(state, first_logits)?;
    // Whether the last token was fed (an accepted draft) or only chosen.
    let mut fed_all;
    loop {
        state = run.commit(state, next, on_event)?;
        fed_all = false;
        if run.grammar.is_accepting(state) || run.tokens.len() >= options.max_tokens {
            break;
        }
        let draft = match proposer {
            Some(p) if options.max_draft_tokens > 0 => {
                let room = options.max_tokens - run.tokens.len();
                let text = run.text();
                p.propose(
                    run.grammar,
                    state,
                    &text,
                    &context.previous_group,
                    options.max_draft_tokens.min(room.saturating_sub(1)),
                )
            }
            _ => Vec::new(),
        };
        let mut feed = Vec::with_capacity(draft.len() + 1);
        feed.push(next);
        feed.extend_from_slice(&draft);
        let logits = model.feed(&feed)?;
        if logits.len() != feed.len() * run.vocab {
            return Err(EngineError::Input(format!(
                "the model returned {} logits for {} tokens of vocabulary {}",
                logits.len(),
                feed.len(),
                run.vocab
            )));
        }
        stats.passes += 1;
        run.passes = stats.passes;
        stats.fed += feed.len();
        stats.drafted += draft.len();
        let rows: Vec<&[f32]> = logits.chunks_exact(run.vocab).collect();
        let mut replaced = None;
        for (i, &d) in draft.iter().enumerate() {
            match run.verify(state, rows[i], d)? {
                Verdict::Accept => {
                    stats.accepted += 1;
                    state = run.commit(state, d, on_event)?;
                    if run.grammar.is_accepting(state) || run.tokens.len() >= options.max_tokens {
                        // Drafts never run past the end; the token budget may cut them.
                        model.rollback(draft.len() - i - 1)?;
                        fed_all = true;
                        break;
                    }
                }
                Verdict::Replace(token) => {
                    model.rollback(draft.len() - i)?;
                    replaced = Some(token);
                    break;
                }
            }
        }
        if fed_all {
            break;
        }
        next = match replaced {
            Some(token) => token,
            None => run.choose(state, rows[draft.len()])?,
        };
    }
    stats.tokens = run.tokens.len();
    let Some(turn) = run.turn.take() else {
        return Err(EngineError::Decode(format!(
            "the turn did not finish within {} tokens: {:?}",
            options.max_tokens,
            run.text()
        )));
    };
    let fed = if fed_all {
        run.tokens.len()
    } else {
        run.tokens.len() - 1
    };
    Ok(DecodedTurn {
        text: run.text(),
        fed,
        tokens: run.tokens,
        turn,
        stats,
        min_margin: run.min_margin,
        chunk_passes: run.chunk_passes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyVocabulary {
        KeyVocabulary::default()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn groups_repeat_the_previous_chunk() {
        let k = keys();
        let p = |text: &str, prev: &[&str]| predict_groups(text, &names(prev), &k);
        let a = "<|action_start|>92 0 0";
        assert_eq!(p(a, &[]), None);
        assert_eq!(
            p(&format!("{a} ;"), &["Shift", "W"]).unwrap(),
            " Shift W ; Shift W ; Shift W ; Shift W ; Shift W ; Shift W<|action_end|>"
        );
        assert_eq!(
            p(&format!("{a} ; W ; Shift"), &[]).unwrap(),
            " ; Shift ; Shift ; Shift ; Shift<|action_end|>"
        );
        assert_eq!(
            p(&format!("{a} ; Shift W ; Shift"), &[]).unwrap(),
            " W ; Shift W ; Shift W ; Shift W ; Shift W<|action_end|>"
        );
        assert_eq!(
            p(&format!("{a} ; Shift W ; Sh"), &[]).unwrap(),
            "ift W ; Shift W ; Shift W ; Shift W ; Shift W<|action_end|>"
        );
        // Left the reference with a complete name: close the group with it.
        assert_eq!(
            p(&format!("{a} ; W ; A"), &[]).unwrap(),
            " ; A ; A ; A ; A<|action_end|>"
        );
        assert_eq!(
            p(&format!("{a} ; W ; A "), &[]).unwrap(),
            "; A ; A ; A ; A<|action_end|>"
        );
        // A name in progress that the reference does not explain.
        assert_eq!(p(&format!("{a} ; W ; Sh"), &[]), None);
        assert_eq!(p(&format!("{a} ; ; ; ; ; ;"), &[]).unwrap(), ACTION_END);
        assert_eq!(p(&format!("{a} ; ; ; ; ; ; W"), &[]).unwrap(), ACTION_END);
        assert_eq!(p(&format!("{a} ; ; ; ; ; ; W "), &[]), None);
        assert_eq!(p(&format!("{a} ; ; ; ; ; ;{ACTION_END}"), &[]), None);
        assert!(at_scroll_start("<|action_start|>1 -2 "));
        assert!(!at_scroll_start("<|action_start|>1 -2 0"));
        assert!(!at_scroll_start("<|action_start|>1 "));
    }

    #[test]
    fn distribution_respects_mask_and_top_p() {
        let mask = TokenMask::Sparse(vec![1, 2, 3]);
        let logits = [10.0, 1.0, 2.0, 0.0];
        let d = masked_distribution(&logits, &mask, 1.0, 1.0);
        assert_eq!(
            d.iter().map(|&(id, _)| id).collect::<Vec<_>>(),
            vec![2, 1, 3]
        );
        assert!((d.iter().map(|&(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-12);
        let d = masked_distribution(&logits, &mask, 1.0, 0.5);
        assert_eq!(d, vec![(2, 1.0)]);
        let all_inf = [f32::NEG_INFINITY; 4];
        assert_eq!(
            masked_distribution(&all_inf, &mask, 1.0, 1.0),
            vec![(1, 1.0)]
        );
    }
}
