//! The Lumine action language (SPEC.md section 3): what the model writes each
//! 200 ms step, and what the executor plays.
//!
//! ```text
//! [<|thought_start|>THOUGHT<|thought_end|>]<|action_start|>DX DY DZ ; K1 ; K2 ; K3 ; K4 ; K5 ; K6<|action_end|>
//! ```
//!
//! * [`KeyVocabulary`]: the model's key names ↔ [`Key`], as data (RON).
//! * [`Chunk`], [`Action`], [`Turn`]: the parsed values; [`Action::format`]
//!   and [`Turn::format_model`] write the canonical text.
//! * [`parse_turn`], [`parse_action`]: whole-text parsing, built on
//!   [`StreamParser`], which takes fragments as tokens arrive and reports
//!   each chunk the moment its delimiter arrives.
//! * [`Grammar`]: a character automaton of the canonical form, for
//!   constrained and speculative decoding.
//! * [`hold`]: hold semantics (which keys go down and up per chunk) and the
//!   exact even split of mouse motion.
//!
//! Parsing is exact and total: any input yields a turn or a [`ParseError`]
//! with a byte offset, never a panic; the same input split into any
//! fragments yields the same result.
//!
//! ```
//! use lumine_action::{KeyVocabulary, parse_turn};
//!
//! let vocab = KeyVocabulary::default();
//! let turn = parse_turn("92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F", &vocab)?;
//! assert_eq!(turn.action.dx, 92);
//! assert_eq!(turn.format(&vocab), "92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F");
//! # Ok::<(), lumine_action::ParseError>(())
//! ```

mod action;
mod chunk;
mod error;
pub mod grammar;
pub mod hold;
mod keys;
mod parse;
mod stream;
mod vocab;

pub use action::{
    ACTION_END, ACTION_START, Action, ActionError, CHUNK_MS, CHUNKS_PER_ACTION, MAX_MOUSE,
    MAX_SCROLL, NumberField, STEP_MS, THOUGHT_END, THOUGHT_START, ThoughtProblem, Turn,
};
pub use chunk::{Chunk, ChunkError, MAX_KEYS_PER_CHUNK};
pub use error::{NumberProblem, ParseError, ParseErrorKind};
pub use grammar::{AllowedChars, Grammar, GrammarOptions, GrammarState};
pub use hold::{HeldKeys, KeyTransition, release_all, split_even, transition};
pub use keys::{KEY_COUNT, Key};
pub use parse::{parse_action, parse_turn};
pub use stream::{StreamEvent, StreamParser};
pub use vocab::{DEFAULT_KEYS_RON, Entries, KeyVocabulary, MAX_NAME_BYTES, VocabularyError};
