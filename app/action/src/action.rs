//! [`Action`] (one 200 ms step of input), [`Turn`] (an optional thought plus
//! an action), their limits, and the canonical formatter.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::chunk::Chunk;
use crate::hold::split_even;
use crate::keys::Key;
use crate::vocab::KeyVocabulary;

/// Key groups (33 ms chunks) in one action.
pub const CHUNKS_PER_ACTION: usize = 6;
/// Largest mouse motion magnitude in one action, per axis (below 1000).
pub const MAX_MOUSE: i32 = 999;
/// Largest scroll magnitude in one action (wheel steps).
pub const MAX_SCROLL: i32 = 5;
/// Duration of one action (one model step), in milliseconds.
pub const STEP_MS: u32 = 200;
/// Duration of one chunk, in milliseconds (200 / 6 ≈ 33.333).
pub const CHUNK_MS: f64 = STEP_MS as f64 / CHUNKS_PER_ACTION as f64;

/// Opens a thought.
pub const THOUGHT_START: &str = "<|thought_start|>";
/// Closes a thought.
pub const THOUGHT_END: &str = "<|thought_end|>";
/// Opens an action.
pub const ACTION_START: &str = "<|action_start|>";
/// Closes an action (and the turn).
pub const ACTION_END: &str = "<|action_end|>";

/// One of the three numbers of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberField {
    /// Horizontal mouse motion (`DX > 0` moves right).
    Dx,
    /// Vertical mouse motion (`DY > 0` moves down).
    Dy,
    /// Scroll wheel steps (`DZ > 0` scrolls up).
    Dz,
}

impl NumberField {
    /// The field as the action text names it: `DX`, `DY`, `DZ`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            NumberField::Dx => "DX",
            NumberField::Dy => "DY",
            NumberField::Dz => "DZ",
        }
    }

    /// Largest magnitude allowed: [`MAX_MOUSE`] or [`MAX_SCROLL`].
    #[must_use]
    pub const fn max(self) -> i32 {
        match self {
            NumberField::Dx | NumberField::Dy => MAX_MOUSE,
            NumberField::Dz => MAX_SCROLL,
        }
    }

    pub(crate) const fn from_index(i: u8) -> NumberField {
        match i {
            0 => NumberField::Dx,
            1 => NumberField::Dy,
            _ => NumberField::Dz,
        }
    }
}

impl fmt::Display for NumberField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with a thought that [`Turn`] cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThoughtProblem {
    /// It contains `<|`, which would start a marker.
    ContainsMarker,
    /// It starts or ends with ASCII whitespace, which the parser trims.
    SurroundingWhitespace,
}

/// Why an [`Action`] or a [`Turn`] is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// A number is outside its range.
    #[error("{field} = {value} is out of range (expected -{max}..={max})", max = field.max())]
    OutOfRange {
        /// Which number.
        field: NumberField,
        /// Its value.
        value: i32,
    },
    /// A key the vocabulary has no name for (it cannot be written).
    #[error("key {key} has no name in the key vocabulary (expected keys the vocabulary names)")]
    UnnamedKey {
        /// The key.
        key: Key,
    },
    /// A thought that does not survive formatting and parsing.
    #[error("{}", match .0 {
        ThoughtProblem::ContainsMarker =>
            "the thought contains `<|` (expected free text without markers)",
        ThoughtProblem::SurroundingWhitespace =>
            "the thought starts or ends with whitespace (expected it trimmed)",
    })]
    InvalidThought(ThoughtProblem),
}

/// One step of input: mouse motion and scroll spread over 200 ms, and the
/// keys held during each of its six 33 ms chunks.
///
/// The fields are public for reading and pattern matching. Build values with
/// [`Action::new`] (which checks the ranges); a value built by hand with an
/// out-of-range number still formats, but into text that every parser
/// rejects, never into a different valid action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawAction")]
pub struct Action {
    /// Mouse motion to the right, `-999..=999` units.
    pub dx: i32,
    /// Mouse motion downwards, `-999..=999` units.
    pub dy: i32,
    /// Scroll wheel steps up, `-5..=5`.
    pub dz: i32,
    /// Keys held in each chunk.
    pub chunks: [Chunk; CHUNKS_PER_ACTION],
}

/// [`Action`] as serialized, before validation.
#[derive(Deserialize)]
#[serde(rename = "Action", deny_unknown_fields)]
struct RawAction {
    dx: i32,
    dy: i32,
    dz: i32,
    chunks: [Chunk; CHUNKS_PER_ACTION],
}

impl TryFrom<RawAction> for Action {
    type Error = ActionError;

    fn try_from(raw: RawAction) -> Result<Action, ActionError> {
        Action::new(raw.dx, raw.dy, raw.dz, raw.chunks)
    }
}

impl Default for Action {
    fn default() -> Self {
        Action::IDLE
    }
}

impl Action {
    /// No motion, no scroll, no key: `0 0 0 ; ; ; ; ; ;`.
    pub const IDLE: Action = Action {
        dx: 0,
        dy: 0,
        dz: 0,
        chunks: [Chunk::EMPTY; 6],
    };

    /// An action, with its ranges checked.
    ///
    /// # Errors
    /// `|dx|` or `|dy|` above [`MAX_MOUSE`], or `|dz|` above [`MAX_SCROLL`].
    pub fn new(
        dx: i32,
        dy: i32,
        dz: i32,
        chunks: [Chunk; CHUNKS_PER_ACTION],
    ) -> Result<Action, ActionError> {
        let action = Action { dx, dy, dz, chunks };
        action.validate()?;
        Ok(action)
    }

    /// Checks the ranges of the numbers.
    ///
    /// # Errors
    /// The first number out of range.
    pub fn validate(&self) -> Result<(), ActionError> {
        for (field, value) in [
            (NumberField::Dx, self.dx),
            (NumberField::Dy, self.dy),
            (NumberField::Dz, self.dz),
        ] {
            if value.unsigned_abs() > field.max().unsigned_abs() {
                return Err(ActionError::OutOfRange { field, value });
            }
        }
        Ok(())
    }

    /// Checks the ranges and that `vocab` names every key, i.e. that
    /// [`Action::format`] writes text that parses back to `self`.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate_for(&self, vocab: &KeyVocabulary) -> Result<(), ActionError> {
        self.validate()?;
        match self
            .chunks
            .iter()
            .flatten()
            .find(|&key| !vocab.contains_key(key))
        {
            Some(key) => Err(ActionError::UnnamedKey { key }),
            None => Ok(()),
        }
    }

    /// The canonical text, e.g. `92 0 0 ; Shift W ; ; ; ; ; F`.
    ///
    /// See [`Action::write_to`] for what happens to invalid actions.
    #[must_use]
    pub fn format(&self, vocab: &KeyVocabulary) -> String {
        let mut out = String::with_capacity(64);
        self.write_to(vocab, &mut out);
        out
    }

    /// Appends the canonical text to `out` (no allocation beyond `out`'s
    /// growth).
    ///
    /// Never fails, and never writes text that parses as another action: a
    /// number out of range is written as is (the parser rejects it), and a
    /// key without a name in `vocab` is written as `<no-name:KEY>` (no name
    /// contains `<`, so the parser rejects that too). Use
    /// [`Action::validate_for`] to check beforehand.
    pub fn write_to(&self, vocab: &KeyVocabulary, out: &mut String) {
        push_int(out, self.dx);
        out.push(' ');
        push_int(out, self.dy);
        out.push(' ');
        push_int(out, self.dz);
        for chunk in &self.chunks {
            out.push_str(" ;");
            for key in chunk {
                out.push(' ');
                match vocab.name(key) {
                    Some(name) => out.push_str(name),
                    None => {
                        out.push_str("<no-name:");
                        out.push_str(key.as_str());
                        out.push('>');
                    }
                }
            }
        }
    }

    /// Mouse motion per chunk: `dx` and `dy` spread evenly over the six
    /// chunks, the parts summing exactly to `dx`, `dy` (see
    /// [`split_even`]).
    #[must_use]
    pub fn mouse_per_chunk(&self) -> [(i32, i32); CHUNKS_PER_ACTION] {
        let mut out = [(0, 0); CHUNKS_PER_ACTION];
        for ((slot, x), y) in out
            .iter_mut()
            .zip(split_even(self.dx, CHUNKS_PER_ACTION))
            .zip(split_even(self.dy, CHUNKS_PER_ACTION))
        {
            *slot = (x, y);
        }
        out
    }

    /// Scroll steps per chunk: `dz` spread evenly over the six chunks.
    #[must_use]
    pub fn scroll_per_chunk(&self) -> [i32; CHUNKS_PER_ACTION] {
        let mut out = [0; CHUNKS_PER_ACTION];
        for (slot, z) in out.iter_mut().zip(split_even(self.dz, CHUNKS_PER_ACTION)) {
            *slot = z;
        }
        out
    }
}

/// Appends the decimal form of `v`, without going through `fmt`.
fn push_int(out: &mut String, v: i32) {
    if v < 0 {
        out.push('-');
    }
    let mut n = v.unsigned_abs();
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `n % 10 < 10`: the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(start..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

/// One model answer: an optional thought, then an action.
///
/// The thought is stored as written between the markers, trimmed of
/// surrounding ASCII whitespace; it never contains `<|`. Like [`Action`], the
/// fields are public; a hand-built thought that breaks these rules formats
/// into text that the parser rejects (see [`Turn::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawTurn")]
pub struct Turn {
    /// The plan, if the model wrote one this step (possibly empty).
    pub thought: Option<String>,
    /// The input to play.
    pub action: Action,
}

/// [`Turn`] as serialized, before validation.
#[derive(Deserialize)]
#[serde(rename = "Turn", deny_unknown_fields)]
struct RawTurn {
    thought: Option<String>,
    action: Action,
}

impl TryFrom<RawTurn> for Turn {
    type Error = ActionError;

    fn try_from(raw: RawTurn) -> Result<Turn, ActionError> {
        Turn::new(raw.thought, raw.action)
    }
}

impl From<Action> for Turn {
    fn from(action: Action) -> Turn {
        Turn {
            thought: None,
            action,
        }
    }
}

/// Why `thought` cannot be carried by a [`Turn`], if it cannot.
pub(crate) fn thought_problem(thought: &str) -> Option<ThoughtProblem> {
    if thought.contains("<|") {
        Some(ThoughtProblem::ContainsMarker)
    } else if thought.trim_ascii() != thought {
        Some(ThoughtProblem::SurroundingWhitespace)
    } else {
        None
    }
}

impl Turn {
    /// A turn, with its thought and action checked.
    ///
    /// # Errors
    /// An action out of range, or a thought that contains `<|` or starts or
    /// ends with ASCII whitespace.
    pub fn new(thought: Option<String>, action: Action) -> Result<Turn, ActionError> {
        let turn = Turn { thought, action };
        turn.validate()?;
        Ok(turn)
    }

    /// Checks the action's ranges and the thought.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ActionError> {
        self.action.validate()?;
        match self.thought.as_deref().and_then(thought_problem) {
            Some(problem) => Err(ActionError::InvalidThought(problem)),
            None => Ok(()),
        }
    }

    /// Checks the turn and that `vocab` names every key: then
    /// [`Turn::format`] and [`Turn::format_model`] parse back to `self`.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate_for(&self, vocab: &KeyVocabulary) -> Result<(), ActionError> {
        self.validate()?;
        self.action.validate_for(vocab)
    }

    /// The shortest canonical text: the bare action when there is no thought,
    /// else `<|thought_start|>T<|thought_end|><|action_start|>A<|action_end|>`.
    #[must_use]
    pub fn format(&self, vocab: &KeyVocabulary) -> String {
        let mut out = String::with_capacity(64);
        if self.thought.is_some() {
            self.write_model_to(vocab, &mut out);
        } else {
            self.action.write_to(vocab, &mut out);
        }
        out
    }

    /// The text a model emits: always with the action markers,
    /// `[<|thought_start|>T<|thought_end|>]<|action_start|>A<|action_end|>`.
    #[must_use]
    pub fn format_model(&self, vocab: &KeyVocabulary) -> String {
        let mut out = String::with_capacity(96);
        self.write_model_to(vocab, &mut out);
        out
    }

    /// Appends [`Turn::format_model`]'s text to `out`.
    pub fn write_model_to(&self, vocab: &KeyVocabulary, out: &mut String) {
        if let Some(thought) = &self.thought {
            out.push_str(THOUGHT_START);
            out.push_str(thought);
            out.push_str(THOUGHT_END);
        }
        out.push_str(ACTION_START);
        self.action.write_to(vocab, out);
        out.push_str(ACTION_END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(keys: &[Key]) -> Chunk {
        Chunk::new(keys).unwrap()
    }

    fn spec_example() -> Action {
        let sw = chunk(&[Key::Shift, Key::W]);
        let fw = chunk(&[Key::F, Key::W]);
        Action::new(92, 0, 0, [sw, sw, sw, fw, fw, chunk(&[Key::F])]).unwrap()
    }

    #[test]
    fn formats_canonically() {
        let v = KeyVocabulary::default();
        assert_eq!(
            spec_example().format(&v),
            "92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F"
        );
        assert_eq!(Action::IDLE.format(&v), "0 0 0 ; ; ; ; ; ;");
        let a = Action::new(-999, 999, -5, [Chunk::EMPTY; 6]).unwrap();
        assert_eq!(a.format(&v), "-999 999 -5 ; ; ; ; ; ;");
        let mut s = String::from("x");
        a.write_to(&v, &mut s);
        assert_eq!(s, "x-999 999 -5 ; ; ; ; ; ;");
    }

    #[test]
    fn push_int_extremes() {
        for v in [0, 1, -1, 9, 10, -10, 999, i32::MAX, i32::MIN] {
            let mut s = String::new();
            push_int(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn turn_formats() {
        let v = KeyVocabulary::default();
        let t = Turn::from(Action::IDLE);
        assert_eq!(t.format(&v), "0 0 0 ; ; ; ; ; ;");
        assert_eq!(
            t.format_model(&v),
            "<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>"
        );
        let t = Turn::new(Some("向前走".into()), Action::IDLE).unwrap();
        let expected =
            "<|thought_start|>向前走<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>";
        assert_eq!(t.format(&v), expected);
        assert_eq!(t.format_model(&v), expected);
    }

    #[test]
    fn validation() {
        assert_eq!(
            Action::new(1000, 0, 0, [Chunk::EMPTY; 6]),
            Err(ActionError::OutOfRange {
                field: NumberField::Dx,
                value: 1000
            })
        );
        assert_eq!(
            Action::new(0, -1000, 0, [Chunk::EMPTY; 6]),
            Err(ActionError::OutOfRange {
                field: NumberField::Dy,
                value: -1000
            })
        );
        assert_eq!(
            Action::new(0, 0, 6, [Chunk::EMPTY; 6]),
            Err(ActionError::OutOfRange {
                field: NumberField::Dz,
                value: 6
            })
        );
        assert!(Action::new(i32::MIN, 0, 0, [Chunk::EMPTY; 6]).is_err());
        assert_eq!(
            Turn::new(Some("a<|b".into()), Action::IDLE),
            Err(ActionError::InvalidThought(ThoughtProblem::ContainsMarker))
        );
        assert_eq!(
            Turn::new(Some(" a".into()), Action::IDLE),
            Err(ActionError::InvalidThought(
                ThoughtProblem::SurroundingWhitespace
            ))
        );
        assert!(Turn::new(Some(String::new()), Action::IDLE).is_ok());
        let v = KeyVocabulary::default();
        let mut a = Action::IDLE;
        a.chunks[2] = chunk(&[Key::Delete]);
        assert_eq!(
            a.validate_for(&v),
            Err(ActionError::UnnamedKey { key: Key::Delete })
        );
        assert_eq!(a.format(&v), "0 0 0 ; ; ; <no-name:Delete> ; ; ;");
    }

    #[test]
    fn mouse_and_scroll_split() {
        let a = Action::new(92, -7, 5, [Chunk::EMPTY; 6]).unwrap();
        let m = a.mouse_per_chunk();
        assert_eq!(m.iter().map(|p| p.0).sum::<i32>(), 92);
        assert_eq!(m.iter().map(|p| p.1).sum::<i32>(), -7);
        assert_eq!(m.map(|p| p.0), [15, 16, 15, 15, 16, 15]);
        assert_eq!(a.scroll_per_chunk(), [1, 1, 1, 0, 1, 1]);
        assert_eq!(a.scroll_per_chunk().iter().sum::<i32>(), 5);
    }

    #[test]
    fn serde_round_trip_validates() {
        let a = spec_example();
        let text = ron::to_string(&a).unwrap();
        assert_eq!(ron::from_str::<Action>(&text).unwrap(), a);
        let bad = text.replace("dx:92", "dx:1000");
        assert!(ron::from_str::<Action>(&bad).is_err(), "{bad}");
        let t = Turn::new(Some("go".into()), a).unwrap();
        let text = ron::to_string(&t).unwrap();
        assert_eq!(ron::from_str::<Turn>(&text).unwrap(), t);
        let bad = text.replace("\"go\"", "\"<|x\"");
        assert!(ron::from_str::<Turn>(&bad).is_err(), "{bad}");
    }
}
