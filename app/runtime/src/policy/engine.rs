//! [`EnginePolicy`]: the policy model, run in-process through ONNX Runtime.
//!
//! Each step renders the context window to chat messages and decodes one turn
//! under the action grammar with draft-free speculative decoding
//! (`lumine_engine::generate::constrained_turn`): every turn the model can
//! produce parses, and each chunk reaches the executor the moment its last
//! token is accepted. The decoded text still goes through the same streaming
//! parser as every other policy before anything is played.

use std::sync::Arc;

use lumine_action::{KeyVocabulary, StreamEvent, Turn};
use lumine_context::{ChatMessage, Part, Role, TokenCounter, estimate_text_tokens};
use lumine_engine::chat::{Content, ContentPart, Message};
use lumine_engine::constrained::TokenGrammar;
use lumine_engine::generate;
use lumine_engine::speculative::{TurnContext, TurnOptions, TurnSampler};
use lumine_engine::{CancelToken, EngineError, Model};
use lumine_vision::RgbImage;

use super::{Canceller, Observation, Policy, PolicyError, SharedFrame};

/// Decoding settings of the engine policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnginePolicyOptions {
    /// Upper bound on the tokens of one turn (a thought of ~40 tokens plus
    /// an action of ~25 fit easily).
    pub max_new_tokens: usize,
    /// Whether the model may write a thought before the action (reasoning mode).
    pub allow_thought: bool,
    /// Longest thought, in characters, the grammar allows.
    pub max_thought_chars: usize,
    /// Most draft tokens verified per decoder pass (0: one token per pass).
    pub max_draft_tokens: usize,
}

impl Default for EnginePolicyOptions {
    fn default() -> Self {
        EnginePolicyOptions {
            max_new_tokens: 160,
            allow_thought: false,
            max_thought_chars: 256,
            max_draft_tokens: 16,
        }
    }
}

/// The ONNX Runtime model as a policy.
pub struct EnginePolicy {
    model: Model,
    options: EnginePolicyOptions,
    cancel: CancelToken,
    grammar: TokenGrammar,
    sampler: TurnSampler,
    /// Key names of the previous action's sixth chunk: the likeliest first chunk.
    previous_group: Vec<String>,
    /// Where the last turn spent its time (for the console's latency plots).
    last_stages: Option<crate::PolicyStages>,
    /// Ids of the frames in the context, so the engine encodes each frame
    /// once while it stays in the window. The weak handle pins the frame's
    /// address: an id is never given to different pixels.
    frame_ids: Vec<(std::sync::Weak<RgbImage>, u64)>,
    next_frame_id: u64,
}

impl std::fmt::Debug for EnginePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnginePolicy")
            .field("model", &self.model)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl EnginePolicy {
    /// Wraps a loaded model.
    #[must_use]
    pub fn new(model: Model, options: EnginePolicyOptions) -> EnginePolicy {
        // The token masks are compiled lazily per grammar state and kept for the run.
        let grammar = TokenGrammar::new(
            model.vocab_index(),
            lumine_action::Grammar::new(
                &model.keys,
                lumine_action::GrammarOptions {
                    allow_thought: options.allow_thought,
                    max_thought_chars: options.max_thought_chars,
                },
            ),
        );
        EnginePolicy {
            model,
            options,
            cancel: CancelToken::default(),
            grammar,
            sampler: TurnSampler::new(lumine_engine::sampler::Sampling::Greedy),
            previous_group: Vec::new(),
            last_stages: None,
            frame_ids: Vec::new(),
            next_frame_id: 0,
        }
    }

    /// The id of `frame` for the engine's vision cache.
    fn frame_id(&mut self, frame: &SharedFrame) -> u64 {
        self.frame_ids.retain(|(weak, _)| weak.strong_count() > 0);
        if let Some((_, id)) = self
            .frame_ids
            .iter()
            .find(|(weak, _)| std::ptr::eq(weak.as_ptr(), Arc::as_ptr(frame)))
        {
            return *id;
        }
        let id = self.next_frame_id;
        self.next_frame_id += 1;
        self.frame_ids.push((Arc::downgrade(frame), id));
        id
    }

    /// The model (its manifest has the prompts, frame size and mouse scale).
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model's key names.
    #[must_use]
    pub fn vocabulary(&self) -> &KeyVocabulary {
        &self.model.keys
    }

    /// Counts text tokens with the model's tokenizer (for the context's
    /// token budget); text it cannot encode falls back to the estimate.
    #[must_use]
    pub fn token_counter(&self) -> TokenCounter {
        let tokenizer = self.model.tokenizer.clone();
        Arc::new(move |text: &str| {
            tokenizer
                .encode(text)
                .map_or_else(|_| estimate_text_tokens(text), |ids| ids.len())
        })
    }
}

/// The context's messages in the engine's chat format, with the frames in
/// prompt order.
#[must_use]
pub fn to_engine_messages(messages: &[ChatMessage<SharedFrame>]) -> (Vec<Message>, Vec<RgbImage>) {
    let mut images = Vec::new();
    let out = messages
        .iter()
        .map(|m| {
            let content = match m.role {
                Role::System | Role::Assistant => Content::Text(
                    m.parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.as_str()),
                            Part::Frame(_) => None,
                        })
                        .collect(),
                ),
                Role::User => Content::Parts(
                    m.parts
                        .iter()
                        .map(|p| match p {
                            Part::Text(text) => ContentPart::Text { text: text.clone() },
                            Part::Frame(frame) => {
                                images.push(RgbImage::clone(frame));
                                // The engine takes the pixels separately; the
                                // path only names the frame in error messages.
                                ContentPart::Image {
                                    path: format!("frame-{}", images.len()).into(),
                                }
                            }
                        })
                        .collect(),
                ),
            };
            Message {
                role: m.role.as_str().to_owned(),
                content,
            }
        })
        .collect();
    (out, images)
}

fn engine_error(err: EngineError) -> PolicyError {
    match err {
        EngineError::Cancelled => PolicyError::Cancelled,
        // A turn that did not finish (e.g. a thought that used up the token
        // budget) costs its step; the next frame gets a fresh turn.
        EngineError::Decode(message) => {
            PolicyError::Rejected(format!("model: decoding: {message}"))
        }
        other => PolicyError::Failed(format!("model: {other}")),
    }
}

impl Policy for EnginePolicy {
    fn describe(&self) -> String {
        format!("model:{}", self.model.manifest.name)
    }

    fn next_turn(
        &mut self,
        observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        self.cancel.reset();
        let (messages, images) = to_engine_messages(observation.messages);
        let mut prompt =
            generate::build_prompt(&mut self.model, &messages, &images).map_err(engine_error)?;
        // The frames in prompt order (as to_engine_messages collected them).
        let frames: Vec<SharedFrame> = observation
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .flat_map(|m| &m.parts)
            .filter_map(|p| match p {
                Part::Frame(frame) => Some(Arc::clone(frame)),
                Part::Text(_) => None,
            })
            .collect();
        prompt.image_ids = frames.iter().map(|f| Some(self.frame_id(f))).collect();
        let options = TurnOptions {
            max_draft_tokens: self.options.max_draft_tokens,
            max_tokens: self.options.max_new_tokens,
            ..TurnOptions::default()
        };
        let context = TurnContext {
            previous_group: std::mem::take(&mut self.previous_group),
        };
        // The decoder runs the streaming action parser itself: each event (mouse,
        // chunk, end) comes from the parser the moment its last token is accepted,
        // and goes straight to the executor. A cancellation stops it mid-turn.
        let (decoded, timings) = generate::constrained_turn(
            &mut self.model,
            &prompt,
            &mut self.grammar,
            &context,
            &options,
            &mut self.sampler,
            &self.cancel,
            &mut |event| out(event.clone()),
        )
        .map_err(engine_error)?;
        self.last_stages = Some(crate::PolicyStages {
            preprocess_ms: prompt.preprocess_ms,
            vision_ms: timings.vision_ms,
            prefill_ms: timings.prefill_ms,
        });
        let parsed = decoded.turn;
        self.previous_group = parsed.action.chunks[lumine_action::CHUNKS_PER_ACTION - 1]
            .keys()
            .iter()
            .filter_map(|&k| self.model.keys.name(k).map(str::to_owned))
            .collect();
        Ok(parsed)
    }

    fn last_stages(&self) -> Option<crate::PolicyStages> {
        self.last_stages
    }

    fn canceller(&self) -> Option<Canceller> {
        let cancel = self.cancel.clone();
        Some(Arc::new(move || cancel.cancel()))
    }
}
