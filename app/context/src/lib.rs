//! The agent's rolling context window (SPEC.md section 4).
//!
//! ```text
//! system prompt
//! user:      [goal text] frame(oldest) [note]
//! assistant: [<|thought_start|>T<|thought_end|>]<|action_start|>A<|action_end|>
//! user:      frame [note]
//! ...                                   (alternating, a FIFO of N frames)
//! user:      frame(newest) [note]       <- the model answers this one
//! ```
//!
//! * The goal text is the latest thought when there is one, else the
//!   operator's instruction (SPEC: "latest thought (or instruction)").
//! * At most `history_frames` frames are in the window, the newest included;
//!   the oldest pair is evicted first.
//! * A new thought flushes the window: every step before the one that thought
//!   is evicted, so the window starts filling again after it.
//! * An optional token budget evicts further (oldest first, never the newest
//!   frame). Frames cost [`frame_tokens`]; text costs whatever the
//!   [`TokenCounter`] says ([`estimate_text_tokens`] by default, or the
//!   model's tokenizer).
//!
//! Every change reports what it evicted ([`ContextChange`]), so the runtime
//! can publish it as an event. The crate is pure: frames are an opaque type
//! parameter `F` (an image handle in the runtime, a file name in tests).

mod budget;
mod window;

pub use budget::{
    FRAME_OVERHEAD_TOKENS, MESSAGE_OVERHEAD_TOKENS, TokenCounter, VISION_FACTOR,
    estimate_text_tokens, frame_tokens,
};
pub use window::{
    ChatMessage, Context, ContextChange, ContextConfig, ContextError, Part, Role, StepEntry,
};
