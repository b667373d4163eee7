//! Whole-text parsing, on top of the streaming parser.

use crate::action::{Action, Turn};
use crate::error::ParseError;
use crate::stream::parse_whole;
use crate::vocab::KeyVocabulary;

/// Parses one turn: a bare action (`DX DY DZ ; K1 ; ... ; K6`), an action
/// wrapped in `<|action_start|>`…`<|action_end|>`, or a whole turn with a
/// thought first (`<|thought_start|>T<|thought_end|><|action_start|>A<|action_end|>`).
///
/// Same result as [`crate::StreamParser`] fed the text in any fragments.
///
/// # Errors
/// The first impossible character, with its byte offset.
pub fn parse_turn(input: &str, vocab: &KeyVocabulary) -> Result<Turn, ParseError> {
    parse_whole(input, vocab)
}

/// Parses the action of one turn, in any form [`parse_turn`] accepts; a
/// thought, if present, is checked and dropped.
///
/// # Errors
/// As [`parse_turn`].
pub fn parse_action(input: &str, vocab: &KeyVocabulary) -> Result<Action, ParseError> {
    parse_whole(input, vocab).map(|turn| turn.action)
}
