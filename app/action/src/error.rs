//! [`ParseError`]: where and why action text was rejected.

use std::fmt;

use crate::action::NumberField;

/// Action text that was rejected, with the byte offset of the first
/// character that made it impossible (or the input's length when the input
/// ended too early).
///
/// Displays as `at byte 17: unknown key "Shx" (expected a key name such as W,
/// Shift, LB)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {kind}")]
pub struct ParseError {
    /// Byte offset in the whole input (all fragments, for the stream parser).
    pub offset: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError { offset, kind }
    }

    /// Byte offset of the offending character in the input.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// The description without the offset, e.g. `unknown key "Shx" (expected
    /// a key name such as W, Shift, LB)`.
    #[must_use]
    pub fn message(&self) -> String {
        self.kind.to_string()
    }
}

/// Why a number was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberProblem {
    /// A digit after a leading `0` (`05`, `00`).
    LeadingZero,
    /// `-0`: zero is written `0`.
    NegativeZero,
    /// A `+` sign: positive numbers have no sign.
    PlusSign,
    /// A `-` not followed by a digit.
    MissingDigits,
}

impl NumberProblem {
    fn describe(self) -> &'static str {
        match self {
            NumberProblem::LeadingZero => "leading zero",
            NumberProblem::NegativeZero => "`-0`",
            NumberProblem::PlusSign => "`+` sign",
            NumberProblem::MissingDigits => "`-` without digits",
        }
    }
}

/// The kinds of [`ParseError`]. Each says what was expected instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Nothing but whitespace.
    EmptyInput,
    /// A character that cannot appear here.
    UnexpectedChar {
        /// The character found.
        found: char,
        /// What could have come instead.
        expected: &'static str,
    },
    /// The input ended before the action was complete.
    UnexpectedEnd {
        /// What was still needed.
        expected: &'static str,
    },
    /// A key name that no vocabulary name matches, or starts with.
    UnknownKey {
        /// The name as read up to and including the offending character.
        name: String,
    },
    /// A fifth key in one group.
    TooManyKeys {
        /// The group (0-based chunk index).
        group: usize,
    },
    /// A key written twice in one group.
    DuplicateKey {
        /// The group (0-based chunk index).
        group: usize,
        /// The repeated key's name.
        name: String,
    },
    /// The action ended after fewer than six key groups.
    MissingGroup {
        /// How many groups were started (0 when the first `;` is missing).
        found: usize,
    },
    /// A seventh `;`, i.e. a seventh key group.
    ExtraGroup,
    /// A number outside its range.
    NumberOutOfRange {
        /// Which number.
        field: NumberField,
    },
    /// A number that is not in canonical form.
    MalformedNumber {
        /// Which number.
        field: NumberField,
        /// What is wrong with it.
        problem: NumberProblem,
    },
    /// Something other than whitespace after `<|action_end|>`.
    TrailingText {
        /// The first character of it.
        found: char,
    },
    /// The input ended inside the thought.
    UnterminatedThought,
    /// No `<|action_start|>` after the thought.
    MissingActionStart {
        /// What came instead, or `None` at the end of the input.
        found: Option<char>,
    },
    /// No `<|action_end|>` after an action that began with `<|action_start|>`.
    MissingActionEnd {
        /// What came instead, or `None` at the end of the input.
        found: Option<char>,
    },
}

/// `" (found 'x')"` or nothing.
struct Found(Option<char>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, ", found {c:?}"),
            None => f.write_str(", found the end of the input"),
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::EmptyInput => {
                f.write_str("empty input (expected an action such as `0 0 0 ; ; ; ; ; ;`)")
            }
            ParseErrorKind::UnexpectedChar { found, expected } => {
                write!(f, "unexpected {found:?} (expected {expected})")
            }
            ParseErrorKind::UnexpectedEnd { expected } => {
                write!(f, "unexpected end of input (expected {expected})")
            }
            ParseErrorKind::UnknownKey { name } => {
                write!(
                    f,
                    "unknown key {name:?} (expected a key name such as W, Shift, LB)"
                )
            }
            ParseErrorKind::TooManyKeys { group } => write!(
                f,
                "fifth key in key group {} (expected at most 4 keys, then `;` or the end)",
                group + 1
            ),
            ParseErrorKind::DuplicateKey { group, name } => write!(
                f,
                "duplicate key {name:?} in key group {} (expected distinct keys in a group)",
                group + 1
            ),
            ParseErrorKind::MissingGroup { found } => write!(
                f,
                "the action ends after {found} of 6 key groups (expected `;` and the next group)"
            ),
            ParseErrorKind::ExtraGroup => {
                f.write_str("seventh key group (expected exactly 6 groups, then the end)")
            }
            ParseErrorKind::NumberOutOfRange { field } => {
                write!(
                    f,
                    "{field} out of range (expected -{max}..={max})",
                    max = field.max()
                )
            }
            ParseErrorKind::MalformedNumber { field, problem } => write!(
                f,
                "malformed {field}: {} (expected an integer written as `-`, then digits \
                 without leading zeros, no `+`, zero as `0`)",
                problem.describe()
            ),
            ParseErrorKind::TrailingText { found } => write!(
                f,
                "text after the end of the action, {found:?} (expected nothing but \
                 whitespace after `<|action_end|>`)"
            ),
            ParseErrorKind::UnterminatedThought => {
                f.write_str("the thought is not closed (expected `<|thought_end|>`)")
            }
            ParseErrorKind::MissingActionStart { found } => write!(
                f,
                "missing action start marker{} (expected `<|action_start|>` after the thought)",
                Found(*found)
            ),
            ParseErrorKind::MissingActionEnd { found } => write!(
                f,
                "missing action end marker{} (expected `<|action_end|>` after the sixth group)",
                Found(*found)
            ),
        }
    }
}
