//! The agent's context across steps, with the KV cache of the unchanged prefix kept.
//!
//! Context layout (SPEC section 4): the system prompt, the goal (the operator's
//! instruction and/or the latest thought), then a FIFO window of the last N steps,
//! each a frame and the turn the model answered it with. Rendered with the chat
//! template ([`PromptLayout`], defaults below), one *segment* per part:
//!
//! ```text
//! system  <|im_start|>system\n{system}<|im_end|>\n
//! goal    <|im_start|>user\n{instruction}<|im_end|>\n
//!         <|im_start|>assistant\n<|thought_start|>{thought}<|thought_end|><|im_end|>\n
//! step    <|im_start|>user\n<|vision_start|>{image}<|vision_end|><|im_end|>\n<|im_start|>assistant\n
//!         {turn tokens, as generated}<|im_end|>\n
//! ```
//!
//! Every segment begins with a special token, so tokenising segments one by one
//! gives the tokens of the whole text, and M-RoPE positions continue from segment
//! to segment exactly as `get_rope_index` computes them over the whole sequence
//! ([`crate::rope::rope_positions_from`]). The turns keep the ids the model
//! generated (their keys and values were computed while decoding).
//!
//! Per step, [`AgentSession::begin_step`] encodes the frame once (its features are
//! kept for recomputation), evicts the oldest step if the window is full, and
//! prefills only what is not in the cache: the end of the previous turn and the new
//! frame. [`AgentSession::decode_turn`] decodes under the grammar with speculation,
//! streaming each chunk as soon as its last token is accepted.
//!
//! Eviction ([`EvictionPolicy`]):
//! * `Exact` drops the cache from the evicted step on and recomputes everything
//!   after it: the logits are those of a fresh prefill of the new context (to
//!   floating-point reassociation), at the cost of re-prefilling the window.
//! * `Streaming` (StreamingLLM): the system prompt and goal stay as the attention
//!   sink, the evicted step's entries are cut out of the cache, and the later
//!   entries are re-positioned by rotating their cached keys by `-Δ` on every
//!   M-RoPE axis (keys are stored after RoPE; [`crate::kv_cache::KvCache::rotate_keys`]),
//!   Δ being the position span of the evicted step. Nothing is recomputed; the kept
//!   entries still carry what they attended to in the evicted step, which is the
//!   approximation StreamingLLM makes.
//!
//! A thought (reasoning mode) flushes the window: the goal becomes the thought, the
//! steps are dropped, and the cache is cut back to the system prompt.

use std::time::Instant;

use lumine_action::{GrammarOptions, StreamEvent, Turn};
use lumine_vision::RgbImageRef;

use crate::constrained::TokenGrammar;
use crate::error::EngineError;
use crate::kv_cache::KvCache;
use crate::model::{CancelToken, Model};
use crate::rope::{self, RopeTable};
use crate::speculative::{
    self, DecodedTurn, Proposer, TokenModel, TurnContext, TurnOptions, TurnSampler,
};
use crate::tokenizer::Tokenizer;

/// What happens to the cache when the oldest step leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Recompute everything after the evicted step: identical to a fresh prefill.
    Exact,
    /// StreamingLLM: cut the step out and re-rotate the later keys; no recomputation.
    Streaming,
}

impl std::str::FromStr for EvictionPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(Self::Exact),
            "streaming" => Ok(Self::Streaming),
            _ => Err(format!("unknown eviction policy {s:?} (exact, streaming)")),
        }
    }
}

impl std::fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exact => "exact",
            Self::Streaming => "streaming",
        })
    }
}

/// The agent's two modes (SPEC section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentMode {
    /// Actions only; the operator's instruction is the goal.
    Instruction,
    /// The model may open a turn with a thought, which becomes the goal.
    Reasoning,
}

/// How the context is rendered: chat-template text with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptLayout {
    /// The system message; `{system}` is the prompt.
    pub system: String,
    /// The instruction; `{instruction}` is its text.
    pub instruction: String,
    /// The kept thought; `{thought}` is its text.
    pub thought: String,
    /// A step's frame up to the generation prompt; `{image}` is the image
    /// placeholder (expanded to one `<|image_pad|>` per visual token).
    pub frame: String,
    /// What closes a step after the model's turn.
    pub turn_end: String,
}

impl Default for PromptLayout {
    fn default() -> Self {
        Self {
            system: "<|im_start|>system\n{system}<|im_end|>\n".to_owned(),
            instruction: "<|im_start|>user\n{instruction}<|im_end|>\n".to_owned(),
            thought: "<|im_start|>assistant\n<|thought_start|>{thought}<|thought_end|><|im_end|>\n"
                .to_owned(),
            frame: "<|im_start|>user\n<|vision_start|>{image}<|vision_end|><|im_end|>\n<|im_start|>assistant\n"
                .to_owned(),
            turn_end: "<|im_end|>\n".to_owned(),
        }
    }
}

/// Options of an [`AgentSession`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionOptions {
    /// Instruction following or reasoning.
    pub mode: AgentMode,
    /// The system prompt; the manifest's prompt for the mode when `None`.
    pub system_prompt: Option<String>,
    /// Steps kept in the window (N; at least 1).
    pub history: usize,
    /// What eviction does to the cache.
    pub eviction: EvictionPolicy,
    /// How the context is rendered.
    pub layout: PromptLayout,
    /// Longest thought, in characters.
    pub max_thought_chars: usize,
}

impl Default for SessionOptions {
    /// Instruction mode, 10 steps (where the report's success peaked), streaming eviction.
    fn default() -> Self {
        Self {
            mode: AgentMode::Instruction,
            system_prompt: None,
            history: 10,
            eviction: EvictionPolicy::Streaming,
            layout: PromptLayout::default(),
            max_thought_chars: 512,
        }
    }
}

/// What one [`AgentSession::begin_step`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepPrefill {
    /// Tokens run through the decoder this step (recomputation included).
    pub prefilled_tokens: usize,
    /// Tokens in the context: what a prefill without reuse would run.
    pub context_tokens: usize,
    /// Tokens of the new frame.
    pub image_tokens: usize,
    /// Steps evicted.
    pub evicted: usize,
    /// Image preprocessing, milliseconds.
    pub preprocess_ms: f64,
    /// Vision encoder, milliseconds.
    pub vision_ms: f64,
    /// Cache edits of eviction (cut and re-rotation), milliseconds.
    pub evict_ms: f64,
    /// Embedding and decoder prefill, milliseconds.
    pub prefill_ms: f64,
}

/// A parser event with the time since the step's frame was captured.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    /// The event (a chunk is released at [`StreamEvent::Chunk`]).
    pub event: StreamEvent,
    /// Milliseconds from frame capture to the acceptance of the event's last token.
    pub since_capture_ms: f64,
}

/// What one [`AgentSession::decode_turn`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StepTurn {
    /// The decoded turn.
    pub decoded: DecodedTurn,
    /// For each chunk 0..6, milliseconds from frame capture to its release.
    pub chunk_ms: Vec<f64>,
    /// Decoding, milliseconds.
    pub decode_ms: f64,
    /// Whether the turn's thought flushed the window.
    pub flushed: bool,
}

impl StepTurn {
    /// Milliseconds from frame capture to the first chunk's release.
    pub fn first_chunk_ms(&self) -> Option<f64> {
        self.chunk_ms.first().copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentKind {
    System,
    Goal,
    Step,
}

#[derive(Debug, Clone)]
struct SegmentImage {
    /// Index in the segment's ids of the first image token.
    first: usize,
    /// Visual tokens (rows of `features`).
    tokens: usize,
    /// `[t, h, w]` in patches.
    grid: [i64; 3],
    /// Encoder output, `[tokens * hidden]`, kept for recomputation after an eviction.
    features: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Segment {
    kind: SegmentKind,
    ids: Vec<u32>,
    rows: [Vec<i64>; 3],
    /// Running M-RoPE position (`get_rope_index`'s `cur`) before and after.
    pos_start: i64,
    pos_end: i64,
    image: Option<SegmentImage>,
}

impl Segment {
    fn shift(&mut self, delta: i64) {
        for row in &mut self.rows {
            for p in row {
                *p -= delta;
            }
        }
        self.pos_start -= delta;
        self.pos_end -= delta;
    }

    fn push_text(&mut self, ids: &[u32]) {
        for &id in ids {
            self.ids.push(id);
            for row in &mut self.rows {
                row.push(self.pos_end);
            }
            self.pos_end += 1;
        }
    }

    fn truncate(&mut self, len: usize) {
        let n = self.ids.len().saturating_sub(len);
        self.ids.truncate(len);
        for row in &mut self.rows {
            row.truncate(len);
        }
        // Only text (one position per token) is ever cut from a segment's end.
        self.pos_end -= n as i64;
    }
}

/// The agent's rolling context and its KV cache, step after step.
pub struct AgentSession {
    options: SessionOptions,
    system: String,
    instruction: Option<String>,
    thought: Option<String>,
    segments: Vec<Segment>,
    cache: KvCache,
    /// Logits after the last token in the cache, when nothing is pending.
    logits: Option<Vec<f32>>,
    grammar: TokenGrammar,
    sampler: TurnSampler,
    tokenizer: Tokenizer,
    keys: lumine_action::KeyVocabulary,
    rope: RopeTable,
    context: TurnContext,
    captured_at: Option<Instant>,
    image_token: u32,
    merge: i64,
    hidden: usize,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession")
            .field("options", &self.options)
            .field("steps", &self.steps())
            .field("tokens", &self.total_len())
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl AgentSession {
    /// A session on `model` with an empty window; nothing runs until the first step.
    pub fn new(model: &Model, options: SessionOptions) -> Result<Self, EngineError> {
        if options.history == 0 {
            return Err(EngineError::Input(
                "a session needs a history of at least one step".to_owned(),
            ));
        }
        if options.layout.frame.matches("{image}").count() != 1 {
            return Err(EngineError::Input(
                "the frame layout must hold exactly one {image} placeholder".to_owned(),
            ));
        }
        let system = options
            .system_prompt
            .clone()
            .unwrap_or_else(|| match options.mode {
                AgentMode::Instruction => model.manifest.prompts.instruction.clone(),
                AgentMode::Reasoning => model.manifest.prompts.reasoning.clone(),
            });
        let grammar = TokenGrammar::new(
            model.vocab_index(),
            lumine_action::Grammar::new(
                &model.keys,
                GrammarOptions {
                    allow_thought: options.mode == AgentMode::Reasoning,
                    max_thought_chars: options.max_thought_chars,
                },
            ),
        );
        let mut session = Self {
            system,
            instruction: None,
            thought: None,
            segments: Vec::new(),
            cache: model.new_cache()?,
            logits: None,
            grammar,
            sampler: TurnSampler::new(crate::sampler::Sampling::Greedy),
            tokenizer: model.tokenizer.clone(),
            keys: model.keys.clone(),
            rope: model.rope_table(),
            context: TurnContext::default(),
            captured_at: None,
            image_token: model.manifest.tokens.image_pad,
            merge: i64::from(model.manifest.vision.spatial_merge_size),
            hidden: model.hidden_size(),
            options,
        };
        let system_text = session
            .options
            .layout
            .system
            .replace("{system}", &session.system);
        let system = session.text_segment(SegmentKind::System, &system_text, 0)?;
        let goal = session.text_segment(SegmentKind::Goal, "", system.pos_end)?;
        session.segments = vec![system, goal];
        Ok(session)
    }

    /// The options.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Steps in the window.
    pub fn steps(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| s.kind == SegmentKind::Step)
            .count()
    }

    /// Tokens in the context.
    pub fn total_len(&self) -> usize {
        self.segments.iter().map(|s| s.ids.len()).sum()
    }

    /// Tokens whose keys and values are in the cache (a prefix of the context).
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }

    /// The context's token ids.
    pub fn token_ids(&self) -> Vec<u32> {
        self.segments
            .iter()
            .flat_map(|s| s.ids.iter().copied())
            .collect()
    }

    /// The context's M-RoPE positions, rows t, h, w.
    pub fn positions(&self) -> [Vec<i64>; 3] {
        std::array::from_fn(|r| {
            self.segments
                .iter()
                .flat_map(|s| s.rows[r].iter().copied())
                .collect()
        })
    }

    /// The `[t, h, w]` grid of each image in the context, in order.
    pub fn image_grids(&self) -> Vec<[i64; 3]> {
        self.segments
            .iter()
            .filter_map(|s| s.image.as_ref().map(|i| i.grid))
            .collect()
    }

    /// The logits after the whole context, once [`AgentSession::prefill`] ran.
    pub fn last_logits(&self) -> Option<&[f32]> {
        self.logits.as_deref()
    }

    /// The grammar's mask counters.
    pub fn mask_stats(&self) -> crate::constrained::MaskStats {
        self.grammar.stats()
    }

    /// Sets the operator's instruction. A new goal flushes the window.
    pub fn set_instruction(&mut self, instruction: Option<String>) -> Result<(), EngineError> {
        self.instruction = instruction;
        self.flush()
    }

    /// The latest thought kept as the goal.
    pub fn thought(&self) -> Option<&str> {
        self.thought.as_deref()
    }

    /// Starts a step: encodes `frame` (captured at `captured_at`), evicts the oldest
    /// step if the window is full, appends the frame and prefills what the cache
    /// lacks.
    pub fn begin_step(
        &mut self,
        model: &mut Model,
        frame: RgbImageRef<'_>,
        captured_at: Instant,
        cancel: &CancelToken,
    ) -> Result<StepPrefill, EngineError> {
        let mut report = StepPrefill::default();
        self.captured_at = Some(captured_at);
        let start = Instant::now();
        let pixels = model.preprocess(frame)?;
        report.preprocess_ms = ms(start);
        let start = Instant::now();
        let features = model.encode_image(&pixels, cancel)?;
        report.vision_ms = ms(start);
        report.image_tokens = pixels.num_image_tokens();

        let start = Instant::now();
        while self.steps() >= self.options.history {
            self.evict_oldest()?;
            report.evicted += 1;
        }
        report.evict_ms = ms(start);

        let pads = self.options.layout.frame.replace(
            "{image}",
            &crate::chat::IMAGE_PAD.repeat(report.image_tokens),
        );
        let ids = self.tokenizer.encode(&pads)?;
        let pos_start = self.segments.last().map_or(0, |s| s.pos_end);
        let (rows, pos_end) = rope::rope_positions_from(
            pos_start,
            &ids,
            self.image_token,
            &[pixels.grid_thw],
            self.merge,
        )?;
        let first = ids
            .iter()
            .position(|&id| id == self.image_token)
            .unwrap_or(0);
        self.segments.push(Segment {
            kind: SegmentKind::Step,
            ids,
            rows,
            pos_start,
            pos_end,
            image: Some(SegmentImage {
                first,
                tokens: report.image_tokens,
                grid: pixels.grid_thw,
                features,
            }),
        });
        let start = Instant::now();
        report.prefilled_tokens = self.prefill(model, cancel)?;
        report.prefill_ms = ms(start);
        report.context_tokens = self.total_len();
        Ok(report)
    }

    /// Runs the decoder on every token not yet in the cache; returns how many.
    pub fn prefill(
        &mut self,
        model: &mut Model,
        cancel: &CancelToken,
    ) -> Result<usize, EngineError> {
        let from = self.cache.len();
        let total = self.total_len();
        if from == total {
            return Ok(0);
        }
        let ids: Vec<u32> = self.token_ids()[from..].to_vec();
        let positions = self.positions().map(|row| row[from..].to_vec());
        let mut embeds = model.embed_tokens(&ids)?;
        let hidden = self.hidden;
        let mut offset = 0;
        for segment in &self.segments {
            if let Some(image) = &segment.image {
                let first = offset + image.first;
                for k in 0..image.tokens {
                    let at = first + k;
                    if at >= from && at < total {
                        let row = (at - from) * hidden;
                        embeds[row..row + hidden]
                            .copy_from_slice(&image.features[k * hidden..(k + 1) * hidden]);
                    }
                }
            }
            offset += segment.ids.len();
        }
        let logits = model.forward(
            embeds,
            [&positions[0], &positions[1], &positions[2]],
            &mut self.cache,
            cancel,
        )?;
        let vocab = logits.len() / ids.len();
        self.logits = Some(logits[logits.len() - vocab..].to_vec());
        Ok(ids.len())
    }

    /// Decodes the model's turn for the current step under the grammar, speculating
    /// per `options`, and appends it to the step. `on_event` receives each parser
    /// event (chunks included) when the token completing it is accepted.
    pub fn decode_turn(
        &mut self,
        model: &mut Model,
        options: &TurnOptions,
        cancel: &CancelToken,
        on_event: &mut dyn FnMut(&TimedEvent),
    ) -> Result<StepTurn, EngineError> {
        let Some(logits) = self.logits.take() else {
            return Err(EngineError::Input(
                "decode_turn needs a prefilled step: call begin_step first".to_owned(),
            ));
        };
        // Turns sampled the same way continue one random stream; a change restarts it
        // from the new seed.
        if self.sampler.sampling() != options.sampling {
            self.sampler = TurnSampler::new(options.sampling);
        }
        let captured_at = self.captured_at.unwrap_or_else(Instant::now);
        let start = Instant::now();
        let mut chunk_ms = Vec::with_capacity(6);
        let cached_before = self.cache.len();
        let step_len_before = self.segments.last().map_or(0, |s| s.ids.len());
        let decoded = {
            let Self {
                segments,
                cache,
                grammar,
                sampler,
                tokenizer,
                keys,
                context,
                ..
            } = self;
            let segment = segments
                .last_mut()
                .ok_or_else(|| EngineError::Input("no step to answer".to_owned()))?;
            let mut adapter = SessionModel {
                model,
                cache,
                segment,
                cancel,
            };
            let proposer = Proposer::new(tokenizer, keys);
            let result = speculative::decode_turn(
                &mut adapter,
                grammar,
                Some(&proposer),
                context,
                &logits,
                options,
                sampler,
                &mut |event| {
                    let since_capture_ms = ms(captured_at);
                    if matches!(event, StreamEvent::Chunk { .. }) {
                        chunk_ms.push(since_capture_ms);
                    }
                    on_event(&TimedEvent {
                        event: event.clone(),
                        since_capture_ms,
                    });
                },
            );
            // The last token stays pending, whether it came as a draft (already fed)
            // or was only chosen: the cache then ends at the same place with or
            // without speculation, and so does everything that follows (a streaming
            // eviction keeps cached entries as they are but recomputes pending ones).
            match result {
                Ok(mut decoded) => {
                    let keep = decoded.tokens.len().saturating_sub(1);
                    if decoded.fed > keep {
                        adapter.rollback(decoded.fed - keep)?;
                        decoded.fed = keep;
                    }
                    Ok(decoded)
                }
                Err(e) => Err(e),
            }
        };
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => {
                // Drop the half-decoded turn: the session is as before the call, and
                // decode_turn may be called again (after a cancellation, say).
                self.cache.truncate(cached_before)?;
                if let Some(segment) = self.segments.last_mut() {
                    segment.truncate(step_len_before);
                }
                self.logits = Some(logits);
                return Err(e);
            }
        };
        let decode_ms = ms(start);
        self.finish_turn(&decoded.tokens[decoded.fed..], &decoded.turn)?;
        let flushed = decoded.turn.thought.is_some();
        Ok(StepTurn {
            decoded,
            chunk_ms,
            decode_ms,
            flushed,
        })
    }

    /// Appends a turn that was not decoded here (a recorded or scripted one) to the
    /// current step, as the text `turn_text` in the model form (with the markers).
    pub fn append_turn(&mut self, turn_text: &str) -> Result<Turn, EngineError> {
        let turn = lumine_action::parse_turn(turn_text, &self.keys)
            .map_err(|e| EngineError::Input(format!("not a valid turn: {e}")))?;
        let ids = self.tokenizer.encode(turn_text)?;
        self.finish_turn(&ids, &turn)?;
        Ok(turn)
    }

    /// Appends the unfed tail of a turn and the turn end; applies a thought.
    fn finish_turn(&mut self, tail: &[u32], turn: &Turn) -> Result<(), EngineError> {
        let end = self.tokenizer.encode(&self.options.layout.turn_end)?;
        let segment = self
            .segments
            .last_mut()
            .filter(|s| s.kind == SegmentKind::Step)
            .ok_or_else(|| EngineError::Input("no step to answer".to_owned()))?;
        segment.push_text(tail);
        segment.push_text(&end);
        self.logits = None;
        self.context.previous_group = turn.action.chunks[5]
            .iter()
            .filter_map(|k| self.keys.name(k).map(str::to_owned))
            .collect();
        if let Some(thought) = &turn.thought
            && self.options.mode == AgentMode::Reasoning
        {
            self.thought = Some(thought.clone());
            self.flush()?;
        }
        Ok(())
    }

    /// Rebuilds the goal and drops every step; the cache keeps only the system prompt.
    fn flush(&mut self) -> Result<(), EngineError> {
        let mut goal_text = String::new();
        if let Some(instruction) = &self.instruction {
            goal_text.push_str(
                &self
                    .options
                    .layout
                    .instruction
                    .replace("{instruction}", instruction),
            );
        }
        if let Some(thought) = &self.thought {
            goal_text.push_str(&self.options.layout.thought.replace("{thought}", thought));
        }
        let system_end = self.segments.first().map_or(0, |s| s.pos_end);
        let system_len = self.segments.first().map_or(0, |s| s.ids.len());
        let goal = self.text_segment(SegmentKind::Goal, &goal_text, system_end)?;
        self.segments.truncate(1);
        self.segments.push(goal);
        self.cache.truncate(system_len)?;
        self.logits = None;
        Ok(())
    }

    /// Removes the oldest step per the eviction policy.
    fn evict_oldest(&mut self) -> Result<(), EngineError> {
        let Some(index) = self
            .segments
            .iter()
            .position(|s| s.kind == SegmentKind::Step)
        else {
            return Ok(());
        };
        let start: usize = self.segments[..index].iter().map(|s| s.ids.len()).sum();
        let removed = self.segments.remove(index);
        let end = start + removed.ids.len();
        let delta = removed.pos_end - removed.pos_start;
        for segment in &mut self.segments[index..] {
            segment.shift(delta);
        }
        let cached = self.cache.len();
        match self.options.eviction {
            EvictionPolicy::Exact => self.cache.truncate(start.min(cached))?,
            EvictionPolicy::Streaming => {
                if cached > start {
                    self.cache.remove_range(start..end.min(cached))?;
                    self.cache.rotate_keys(start, &self.rope, [-delta; 3])?;
                }
            }
        }
        self.logits = None;
        Ok(())
    }

    /// A text segment starting at running position `pos_start`.
    fn text_segment(
        &self,
        kind: SegmentKind,
        text: &str,
        pos_start: i64,
    ) -> Result<Segment, EngineError> {
        let ids = if text.is_empty() {
            Vec::new()
        } else {
            self.tokenizer.encode(text)?
        };
        let (rows, pos_end) =
            rope::rope_positions_from(pos_start, &ids, self.image_token, &[], self.merge)?;
        Ok(Segment {
            kind,
            ids,
            rows,
            pos_start,
            pos_end,
            image: None,
        })
    }

    /// The logits after the whole context computed from scratch (positions from
    /// [`rope::rope_positions`] over the whole sequence, a new cache), for checking
    /// reuse against a fresh prefill. Also checks that the session's incremental
    /// positions equal the fresh ones.
    pub fn fresh_prefill_logits(
        &self,
        model: &mut Model,
        cancel: &CancelToken,
    ) -> Result<Vec<f32>, EngineError> {
        let ids = self.token_ids();
        let grids = self.image_grids();
        let fresh = rope::rope_positions(&ids, self.image_token, &grids, self.merge)?;
        if fresh.rows != self.positions() {
            return Err(EngineError::Input(
                "the session's positions differ from get_rope_index over the whole context"
                    .to_owned(),
            ));
        }
        let mut embeds = model.embed_tokens(&ids)?;
        let hidden = self.hidden;
        let mut offset = 0;
        for segment in &self.segments {
            if let Some(image) = &segment.image {
                let first = (offset + image.first) * hidden;
                embeds[first..first + image.tokens * hidden].copy_from_slice(&image.features);
            }
            offset += segment.ids.len();
        }
        let mut cache = model.new_cache()?;
        let logits = model.forward(
            embeds,
            [&fresh.rows[0], &fresh.rows[1], &fresh.rows[2]],
            &mut cache,
            cancel,
        )?;
        let vocab = logits.len() / ids.len().max(1);
        Ok(logits[logits.len() - vocab..].to_vec())
    }
}

/// The session's model as a [`TokenModel`]: feeding appends to the current step
/// at decode positions (all three rows equal, continuing the running position).
struct SessionModel<'a> {
    model: &'a mut Model,
    cache: &'a mut KvCache,
    segment: &'a mut Segment,
    cancel: &'a CancelToken,
}

impl TokenModel for SessionModel<'_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let embeds = self.model.embed_tokens(tokens)?;
        let positions: Vec<i64> = (0..tokens.len() as i64)
            .map(|k| self.segment.pos_end + k)
            .collect();
        let logits = self.model.forward(
            embeds,
            [&positions, &positions, &positions],
            self.cache,
            self.cancel,
        )?;
        self.segment.push_text(tokens);
        Ok(logits)
    }

    fn rollback(&mut self, n: usize) -> Result<(), EngineError> {
        if n == 0 {
            return Ok(());
        }
        self.cache.truncate(self.cache.len().saturating_sub(n))?;
        let len = self.segment.ids.len().saturating_sub(n);
        self.segment.truncate(len);
        Ok(())
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}
