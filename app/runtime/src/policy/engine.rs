//! [`EnginePolicy`]: the policy model, run in-process through ONNX Runtime.
//!
//! Each step renders the context window to chat messages, decodes greedily
//! until `<|action_end|>`, and feeds every decoded piece of text to the
//! streaming action parser, so each chunk reaches the executor the moment
//! its delimiter is decoded. The first invalid character cancels the
//! generation: the turn is rejected and nothing more of it is played.

use std::sync::Arc;

use lumine_action::{KeyVocabulary, StreamEvent, Turn};
use lumine_context::{ChatMessage, Part, Role, TokenCounter, estimate_text_tokens};
use lumine_engine::chat::{Content, ContentPart, Message};
use lumine_engine::generate::{self, GenerateOptions};
use lumine_engine::{CancelToken, EngineError, Model};
use lumine_vision::RgbImage;

use super::{Canceller, Observation, Policy, PolicyError, SharedFrame, TextTurn};

/// Decoding settings of the engine policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnginePolicyOptions {
    /// Upper bound on the tokens of one turn (a thought of ~40 tokens plus
    /// an action of ~25 fit easily).
    pub max_new_tokens: usize,
}

impl Default for EnginePolicyOptions {
    fn default() -> Self {
        EnginePolicyOptions {
            max_new_tokens: 160,
        }
    }
}

/// The ONNX Runtime model as a policy.
#[derive(Debug)]
pub struct EnginePolicy {
    model: Model,
    options: EnginePolicyOptions,
    cancel: CancelToken,
}

impl EnginePolicy {
    /// Wraps a loaded model.
    #[must_use]
    pub fn new(model: Model, options: EnginePolicyOptions) -> EnginePolicy {
        EnginePolicy {
            model,
            options,
            cancel: CancelToken::default(),
        }
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
        let prompt =
            generate::build_prompt(&mut self.model, &messages, &images).map_err(engine_error)?;
        let options = GenerateOptions::greedy(&self.model, self.options.max_new_tokens);
        let mut turn = TextTurn::new(&self.model.keys);
        let mut rejected: Option<PolicyError> = None;
        let cancel = self.cancel.clone();
        let result = generate::generate(
            &mut self.model,
            &prompt,
            &options,
            &self.cancel,
            &mut |_, piece| {
                if rejected.is_none()
                    && let Err(err) = turn.push(piece, out)
                {
                    rejected = Some(err);
                    // Stop decoding: nothing after an error is ever played.
                    cancel.cancel();
                }
            },
        );
        if let Some(err) = rejected {
            return Err(err);
        }
        result.map_err(engine_error)?;
        turn.finish(out)
    }

    fn canceller(&self) -> Option<Canceller> {
        let cancel = self.cancel.clone();
        Some(Arc::new(move || cancel.cancel()))
    }
}
