//! Policies: what decides each step's input.
//!
//! A [`Policy`] streams one turn per observation: the thought (if any), then
//! the mouse motion, then the six chunks, each reported through `out` the
//! moment it is known so the executor can play it (SPEC.md section 2). The
//! returned [`Turn`] must be what was streamed. Implementations:
//!
//! * [`ScriptPolicy`]: action strings from a file, one per line.
//! * [`ReplayPolicy`]: the actions of a recorded trajectory.
//! * `EnginePolicy` (feature `engine`): the ONNX Runtime model (app/engine), text streamed
//!   through the action parser token by token.
//!
//! A remote OpenAI-compatible engine fits the same trait: feed the streamed
//! text to a [`TextTurn`] and report stalls and disconnects as
//! [`PolicyError::Stalled`] and [`PolicyError::Disconnected`].

#[cfg(feature = "engine")]
mod engine;
mod replay;
mod script;

use std::sync::Arc;
use std::time::Instant;

use lumine_action::{KeyVocabulary, ParseError, StreamEvent, StreamParser, Turn};
use lumine_context::ChatMessage;
use lumine_vision::RgbImage;

#[cfg(feature = "engine")]
pub use engine::{EnginePolicy, EnginePolicyOptions, to_engine_messages};
pub use replay::ReplayPolicy;
pub use script::{ScriptError, ScriptPolicy};

/// A frame as the runtime passes it around: scaled to the model's size,
/// shared, never copied.
pub type SharedFrame = Arc<RgbImage>;

/// Cancels a policy's turn in progress from another thread.
pub type Canceller = Arc<dyn Fn() + Send + Sync>;

/// What a policy sees at one step.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Step index.
    pub step: u64,
    /// The newest frame (also the last frame in `messages`).
    pub frame: &'a SharedFrame,
    /// The context window rendered as chat messages, newest frame last.
    pub messages: &'a [ChatMessage<SharedFrame>],
    /// When the step's first chunk is due, if the run is on a clock.
    pub first_chunk_due: Option<Instant>,
}

/// Why a policy produced no (complete) turn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// No more turns (a script or a replay reached its end): the run ends
    /// normally.
    #[error("the policy has no more turns")]
    Exhausted,
    /// The policy's text is not a valid turn; nothing more of it is played.
    #[error("invalid turn {text:?}: {error}")]
    Parse {
        /// The text received up to and including the error.
        text: String,
        /// Where and why.
        error: ParseError,
    },
    /// A remote engine stopped sending within its time limit.
    #[error("the engine stalled: {0}")]
    Stalled(String),
    /// A remote engine's connection broke.
    #[error("the engine disconnected: {0}")]
    Disconnected(String),
    /// The turn was cancelled (pause, stop).
    #[error("cancelled")]
    Cancelled,
    /// The policy produced no complete turn this step (a model that ran out
    /// of its token budget mid-thought): the step is lost, the run goes on.
    #[error("{0}")]
    Rejected(String),
    /// The policy cannot go on (the model failed, a file vanished).
    #[error("{0}")]
    Failed(String),
}

impl PolicyError {
    /// True when the run cannot continue with this policy. A rejected turn,
    /// a stall or a disconnect only costs the step.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        matches!(self, PolicyError::Failed(_))
    }
}

/// Decides each step's input.
pub trait Policy: Send {
    /// A short description for logs (`script:moves.txt`, `model:lumine-7b`).
    fn describe(&self) -> String;

    /// Produces the turn for `observation`, reporting its parts through
    /// `out` as they become known (thought, mouse, chunks 0..6, end).
    ///
    /// # Errors
    /// See [`PolicyError`]; after an error nothing more of the turn is played.
    fn next_turn(
        &mut self,
        observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError>;

    /// Where the last turn's time went inside the policy, if it knows
    /// (the engine does; scripts and replays do not).
    fn last_stages(&self) -> Option<crate::PolicyStages> {
        None
    }

    /// How to cancel a turn in progress from another thread, if possible.
    fn canceller(&self) -> Option<Canceller> {
        None
    }
}

/// Reports a whole turn through `out` in streaming order.
pub fn stream_turn(turn: &Turn, out: &mut dyn FnMut(StreamEvent)) {
    if let Some(thought) = &turn.thought {
        out(StreamEvent::Thought(thought.clone()));
    }
    let a = &turn.action;
    out(StreamEvent::Mouse {
        dx: a.dx,
        dy: a.dy,
        dz: a.dz,
    });
    for (index, chunk) in a.chunks.iter().enumerate() {
        out(StreamEvent::Chunk {
            index,
            chunk: *chunk,
        });
    }
    out(StreamEvent::End(turn.clone()));
}

/// A turn arriving as text fragments (model tokens, a server's stream):
/// parses them with the streaming parser and forwards each event the moment
/// it is complete.
#[derive(Debug, Clone)]
pub struct TextTurn {
    parser: StreamParser,
    text: String,
    events: Vec<StreamEvent>,
}

impl TextTurn {
    /// A parser for one turn.
    #[must_use]
    pub fn new(vocab: &KeyVocabulary) -> TextTurn {
        TextTurn {
            parser: StreamParser::new(vocab),
            text: String::new(),
            events: Vec::new(),
        }
    }

    /// Feeds a fragment, forwarding what it completes.
    ///
    /// # Errors
    /// The turn is invalid (events before the error were forwarded).
    pub fn push(
        &mut self,
        fragment: &str,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), PolicyError> {
        self.text.push_str(fragment);
        let result = self.parser.push(fragment, &mut self.events);
        for event in self.events.drain(..) {
            out(event);
        }
        result.map_err(|error| PolicyError::Parse {
            text: self.text.clone(),
            error,
        })
    }

    /// True once the end marker closed the turn.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.parser.is_done()
    }

    /// Ends the text and returns the turn.
    ///
    /// # Errors
    /// The text is incomplete or invalid.
    pub fn finish(mut self, out: &mut dyn FnMut(StreamEvent)) -> Result<Turn, PolicyError> {
        let result = self.parser.finish(&mut self.events);
        for event in self.events.drain(..) {
            out(event);
        }
        result.map_err(|error| PolicyError::Parse {
            text: self.text,
            error,
        })
    }

    /// The text received so far.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_turn_streams_chunks_before_the_end() {
        let vocab = KeyVocabulary::default();
        let mut turn = TextTurn::new(&vocab);
        let mut seen = Vec::new();
        for piece in ["<|action_start|>", "3 0 0", " ;", " W ;", " W", " ;"] {
            turn.push(piece, &mut |e| seen.push(e)).unwrap();
        }
        assert!(matches!(seen[0], StreamEvent::Mouse { dx: 3, .. }));
        assert!(matches!(seen[2], StreamEvent::Chunk { index: 1, .. }));
        let err = turn.push(" Q Q", &mut |e| seen.push(e)).unwrap_err();
        assert!(matches!(err, PolicyError::Parse { .. }), "{err}");
        assert!(!err.is_fatal());
    }
}
