//! The streaming parser: action text in, fragment by fragment, as model
//! tokens arrive; chunks out, each the moment its delimiter arrives.
//!
//! The whole-text functions in [`crate::parse`] run this same state machine
//! over the whole input, so the two agree by construction.
//!
//! It reads one character at a time (bytes, for ASCII), keeps O(1) state (a
//! trie node for a key name in progress, the numbers, the chunks so far) and
//! never looks back at earlier input, so any fragmentation gives the same
//! result and the same error offset. Errors are reported at the first
//! character after which no valid action is possible: `Shx` fails at `x`
//! (no name starts with `Shx`), `W W` at the second `W` (a group may not
//! repeat a key and no other name starts with `W`), `1000` at its fourth
//! digit, a seventh `;` at itself. An input that ends too early fails at its
//! length.

use crate::action::{Action, CHUNKS_PER_ACTION, NumberField, Turn};
use crate::chunk::Chunk;
use crate::error::{NumberProblem, ParseError, ParseErrorKind};
use crate::vocab::{KeyVocabulary, Node, Trie};

/// What the stream parser reports as the text arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The thought, when `<|thought_end|>` closes it (trimmed).
    Thought(String),
    /// The mouse motion and scroll, when the first `;` arrives.
    Mouse {
        /// Horizontal motion.
        dx: i32,
        /// Vertical motion.
        dy: i32,
        /// Scroll steps.
        dz: i32,
    },
    /// A key group, the moment its delimiter arrives: chunks 0..=4 at their
    /// closing `;`, chunk 5 at the end of `<|action_end|>` (or at
    /// [`StreamParser::finish`] for a bare action).
    Chunk {
        /// 0-based chunk index, `0..6`.
        index: usize,
        /// The keys held.
        chunk: Chunk,
    },
    /// The whole turn, when `<|action_end|>` closes it (or at
    /// [`StreamParser::finish`] for a bare action).
    End(Turn),
}

/// Incremental parser of one turn.
///
/// It owns a [`KeyVocabulary`] handle (a cheap `Arc` clone of the one given
/// to [`StreamParser::new`]), so it has no lifetime and can live in a task.
/// Feed it fragments with [`StreamParser::push`] and close with
/// [`StreamParser::finish`]; the outcome (turn or error, offset included) is
/// exactly [`crate::parse_turn`]'s on the concatenated text.
///
/// Chunks are reported before the action is complete, so a later error
/// (say, an unknown key in chunk 4) can follow chunks already played: the
/// executor then releases everything. `End` is reported at
/// `<|action_end|>`; a whole-text parse also rejects text after it, which a
/// streaming host avoids by stopping the decoder at `End`.
///
/// After an error the parser stays failed: every later call returns the same
/// error. [`StreamParser::reset`] starts a new turn.
#[derive(Debug, Clone)]
pub struct StreamParser {
    vocab: KeyVocabulary,
    core: Core,
}

impl StreamParser {
    /// A parser for one turn, using `vocab`'s key names.
    #[must_use]
    pub fn new(vocab: &KeyVocabulary) -> StreamParser {
        StreamParser {
            vocab: vocab.clone(),
            core: Core::new(),
        }
    }

    /// Feeds the next fragment and appends the events it completes to `out`.
    ///
    /// # Errors
    /// The first impossible character, with its offset in the whole input;
    /// the events before it have been appended.
    pub fn push(&mut self, fragment: &str, out: &mut Vec<StreamEvent>) -> Result<(), ParseError> {
        self.core
            .push::<true>(self.vocab.trie(), &self.vocab, fragment, out)
    }

    /// Ends the input: completes a bare action, or reports what is missing.
    /// Returns the turn (also reported as [`StreamEvent::End`], if not
    /// already).
    ///
    /// # Errors
    /// The input is incomplete, or an earlier error.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<Turn, ParseError> {
        self.core
            .finish::<true>(self.vocab.trie(), &self.vocab, out)?;
        self.core
            .turn
            .clone()
            .ok_or_else(|| self.core.internal_error())
    }

    /// Bytes consumed so far (the offset of the next fragment).
    #[must_use]
    pub fn offset(&self) -> usize {
        self.core.pos
    }

    /// True once `<|action_end|>` (or `finish` of a bare action) completed
    /// the turn.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.core.state == State::Done
    }

    /// The error the parser has stopped at, if any.
    #[must_use]
    pub fn error(&self) -> Option<&ParseError> {
        self.core.failed.as_ref()
    }

    /// Forgets everything and starts a new turn at offset 0.
    pub fn reset(&mut self) {
        self.core = Core::new();
    }
}

/// Parses a whole text with the same state machine, without events.
pub(crate) fn parse_whole(input: &str, vocab: &KeyVocabulary) -> Result<Turn, ParseError> {
    let mut core = Core::new();
    // Never written to: events are off.
    let mut no_events = Vec::new();
    let trie = vocab.trie();
    core.push::<false>(trie, vocab, input, &mut no_events)?;
    core.finish::<false>(trie, vocab, &mut no_events)?;
    core.turn.take().ok_or_else(|| core.internal_error())
}

/// A marker being matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lit {
    /// `<|` at the start of the input, before `t` or `a` decides which.
    Open,
    ThoughtStart,
    ThoughtEnd,
    ActionStart,
    ActionEnd,
}

impl Lit {
    fn text(self) -> &'static [u8] {
        match self {
            Lit::Open => b"<|",
            Lit::ThoughtStart => crate::THOUGHT_START.as_bytes(),
            Lit::ThoughtEnd => crate::THOUGHT_END.as_bytes(),
            Lit::ActionStart => crate::ACTION_START.as_bytes(),
            Lit::ActionEnd => crate::ACTION_END.as_bytes(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Leading whitespace.
    Start,
    /// Inside a marker: `idx` bytes of it matched.
    Lit { lit: Lit, idx: u8 },
    /// Thought text.
    ThoughtText,
    /// Thought text, after a `<` that may open `<|thought_end|>`.
    ThoughtLt,
    /// Whitespace between `<|thought_end|>` and `<|action_start|>`.
    AfterThought,
    /// Whitespace after `<|action_start|>`.
    AfterActionStart,
    /// Spaces or tabs before number `field` (1 or 2).
    NumSep { field: u8 },
    /// After the `-` of number `field`.
    NumMinus { field: u8 },
    /// Digits of number `field`; `value` is the magnitude so far.
    NumDigits { field: u8, neg: bool, value: u16 },
    /// Whitespace after DZ, before the first `;`.
    AfterDz,
    /// In key group `Core::group`, between names.
    GroupWs,
    /// In key group `Core::group`, inside a name (at trie node `Core::node`).
    GroupKey,
    /// After `<|action_end|>` (or a finished bare action).
    Done,
}

/// The parser state, independent of where the vocabulary lives.
#[derive(Debug, Clone)]
struct Core {
    /// Bytes consumed before the current fragment.
    pos: usize,
    state: State,
    /// The action began with `<|action_start|>` (so it must end with
    /// `<|action_end|>`).
    marked: bool,
    thought: Option<String>,
    numbers: [i32; 3],
    chunks: [Chunk; CHUNKS_PER_ACTION],
    /// Current key group, `0..6`.
    group: u8,
    /// Keys of the current group as a bit mask.
    taken: u128,
    /// Trie node of the name being read.
    node: Node,
    failed: Option<ParseError>,
    turn: Option<Turn>,
}

/// What the `;`-less states expect, by number field.
const EXPECT_NUMBER: [&str; 3] = [
    "the DX number (an integer such as `0` or `-12`)",
    "the DY number after spaces or tabs",
    "the DZ number after spaces or tabs",
];

/// ASCII whitespace (space, tab, LF, FF, CR).
#[inline]
fn is_ws(c: char) -> bool {
    c.is_ascii_whitespace()
}

impl Core {
    fn new() -> Core {
        Core {
            pos: 0,
            state: State::Start,
            marked: false,
            thought: None,
            numbers: [0; 3],
            chunks: [Chunk::EMPTY; CHUNKS_PER_ACTION],
            group: 0,
            taken: 0,
            node: Trie::ROOT,
            failed: None,
            turn: None,
        }
    }

    /// A state the machine should never reach; reported, not panicked on.
    fn internal_error(&self) -> ParseError {
        ParseError::new(
            self.pos,
            ParseErrorKind::UnexpectedEnd {
                expected: "a complete action (internal parser state)",
            },
        )
    }

    fn fail(&mut self, offset: usize, kind: ParseErrorKind) -> ParseError {
        let err = ParseError::new(offset, kind);
        self.failed = Some(err.clone());
        err
    }

    fn push<const EMIT: bool>(
        &mut self,
        trie: &Trie,
        vocab: &KeyVocabulary,
        fragment: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let bytes = fragment.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.state == State::ThoughtText && b != b'<' {
                // Bulk-copy thought text up to the next `<` (ASCII, so the
                // cut is on a character boundary).
                let rest = bytes.get(i..).unwrap_or(&[]);
                let n = rest.iter().position(|&x| x == b'<').unwrap_or(rest.len());
                if let (Some(text), Some(thought)) = (fragment.get(i..i + n), &mut self.thought) {
                    thought.push_str(text);
                }
                i += n;
                continue;
            }
            if let State::Lit { lit, idx } = self.state
                && lit != Lit::Open
            {
                // Bulk-match a marker, stopping before its last byte so that
                // `step` runs the completion (and any mismatch) as usual.
                let want = lit.text().get(usize::from(idx)..).unwrap_or(&[]);
                let rest = bytes.get(i..).unwrap_or(&[]);
                let n = want.iter().zip(rest).take_while(|(a, b)| a == b).count();
                let n = n.min(want.len().saturating_sub(1));
                if n > 0 {
                    // Markers are < 256 bytes: `n` fits in u8.
                    self.state = State::Lit {
                        lit,
                        idx: idx + n as u8,
                    };
                    i += n;
                    continue;
                }
            }
            let c = if b < 0x80 {
                char::from(b)
            } else {
                match fragment.get(i..).and_then(|s| s.chars().next()) {
                    Some(c) => c,
                    None => break,
                }
            };
            if let Err(kind) = self.step::<EMIT>(trie, vocab, c, out) {
                return Err(self.fail(self.pos + i, kind));
            }
            i += c.len_utf8();
        }
        self.pos += bytes.len();
        Ok(())
    }

    fn finish<const EMIT: bool>(
        &mut self,
        trie: &Trie,
        vocab: &KeyVocabulary,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let kind = match self.state {
            State::Done => return Ok(()),
            State::Start => ParseErrorKind::EmptyInput,
            State::Lit {
                lit: Lit::Open | Lit::ThoughtStart,
                ..
            } => ParseErrorKind::UnexpectedEnd {
                expected: "`<|thought_start|>` or `<|action_start|>`",
            },
            State::ThoughtText
            | State::ThoughtLt
            | State::Lit {
                lit: Lit::ThoughtEnd,
                ..
            } => ParseErrorKind::UnterminatedThought,
            State::AfterThought => ParseErrorKind::MissingActionStart { found: None },
            State::Lit {
                lit: Lit::ActionStart,
                ..
            } => {
                if self.thought.is_some() {
                    ParseErrorKind::MissingActionStart { found: None }
                } else {
                    ParseErrorKind::UnexpectedEnd {
                        expected: "`<|action_start|>`",
                    }
                }
            }
            State::AfterActionStart => ParseErrorKind::UnexpectedEnd {
                expected: EXPECT_NUMBER[0],
            },
            State::NumSep { field } => ParseErrorKind::UnexpectedEnd {
                expected: expect_number(field),
            },
            State::NumMinus { field } => ParseErrorKind::MalformedNumber {
                field: NumberField::from_index(field),
                problem: NumberProblem::MissingDigits,
            },
            State::NumDigits { field: 0, .. } => ParseErrorKind::UnexpectedEnd {
                expected: "a space and the DY number",
            },
            State::NumDigits { field: 1, .. } => ParseErrorKind::UnexpectedEnd {
                expected: "a space and the DZ number",
            },
            State::NumDigits { .. } | State::AfterDz => ParseErrorKind::MissingGroup { found: 0 },
            State::GroupWs | State::GroupKey => {
                let step = if self.state == State::GroupKey {
                    self.end_name(trie, vocab)
                } else {
                    Ok(())
                };
                match step {
                    Err(kind) => kind,
                    Ok(()) if self.group < 5 => ParseErrorKind::MissingGroup {
                        found: usize::from(self.group) + 1,
                    },
                    Ok(()) if self.marked => ParseErrorKind::MissingActionEnd { found: None },
                    Ok(()) => {
                        // A bare action ends with the input.
                        self.complete::<EMIT>(out);
                        return Ok(());
                    }
                }
            }
            State::Lit {
                lit: Lit::ActionEnd,
                ..
            } => ParseErrorKind::MissingActionEnd { found: None },
        };
        Err(self.fail(self.pos, kind))
    }

    /// One character. Errors are reported at its offset by the caller.
    #[inline]
    fn step<const EMIT: bool>(
        &mut self,
        trie: &Trie,
        vocab: &KeyVocabulary,
        c: char,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseErrorKind> {
        match self.state {
            State::GroupKey => match c {
                ';' => {
                    self.end_name(trie, vocab)?;
                    self.close_group::<EMIT>(out)
                }
                '<' => {
                    self.end_name(trie, vocab)?;
                    self.group_marker()
                }
                c if is_ws(c) => {
                    self.end_name(trie, vocab)?;
                    self.state = State::GroupWs;
                    Ok(())
                }
                c => self.name_char(trie, vocab, c),
            },
            State::GroupWs => match c {
                ';' => self.close_group::<EMIT>(out),
                '<' => self.group_marker(),
                c if is_ws(c) => Ok(()),
                c => {
                    if self.current_chunk().is_full() {
                        return Err(ParseErrorKind::TooManyKeys {
                            group: usize::from(self.group),
                        });
                    }
                    self.node = Trie::ROOT;
                    self.state = State::GroupKey;
                    self.name_char(trie, vocab, c)
                }
            },
            State::NumDigits { field, neg, value } => {
                self.digits_step::<EMIT>(field, neg, value, c, out)
            }
            State::NumSep { field } => match c {
                ' ' | '\t' => Ok(()),
                c => self.start_number(field, c),
            },
            State::NumMinus { field } => match c {
                '1'..='9' => self.digit(field, true, 0, c),
                '0' => Err(malformed(field, NumberProblem::NegativeZero)),
                _ => Err(malformed(field, NumberProblem::MissingDigits)),
            },
            State::AfterDz => match c {
                ';' => {
                    self.open_groups::<EMIT>(out);
                    Ok(())
                }
                '<' if self.marked => Err(ParseErrorKind::MissingGroup { found: 0 }),
                c if is_ws(c) => Ok(()),
                found => Err(ParseErrorKind::UnexpectedChar {
                    found,
                    expected: "`;` and the first key group",
                }),
            },
            State::Start => match c {
                '<' => {
                    self.state = State::Lit {
                        lit: Lit::Open,
                        idx: 1,
                    };
                    Ok(())
                }
                c if is_ws(c) => Ok(()),
                '-' | '+' | '0'..='9' => self.start_number(0, c),
                found => Err(ParseErrorKind::UnexpectedChar {
                    found,
                    expected: "an action (a number such as `0`), `<|action_start|>` or \
                               `<|thought_start|>`",
                }),
            },
            State::Lit { lit, idx } => self.lit_step::<EMIT>(lit, idx, c, out),
            State::ThoughtText => {
                if c == '<' {
                    self.state = State::ThoughtLt;
                } else if let Some(t) = &mut self.thought {
                    t.push(c);
                }
                Ok(())
            }
            State::ThoughtLt => {
                if c == '|' {
                    self.state = State::Lit {
                        lit: Lit::ThoughtEnd,
                        idx: 2,
                    };
                    return Ok(());
                }
                // The `<` was text.
                if let Some(t) = &mut self.thought {
                    t.push('<');
                    if c != '<' {
                        t.push(c);
                        self.state = State::ThoughtText;
                    }
                }
                Ok(())
            }
            State::AfterThought => match c {
                '<' => {
                    self.state = State::Lit {
                        lit: Lit::ActionStart,
                        idx: 1,
                    };
                    Ok(())
                }
                c if is_ws(c) => Ok(()),
                found => Err(ParseErrorKind::MissingActionStart { found: Some(found) }),
            },
            State::AfterActionStart => match c {
                c if is_ws(c) => Ok(()),
                c => self.start_number(0, c),
            },
            State::Done => match c {
                c if is_ws(c) => Ok(()),
                found => Err(ParseErrorKind::TrailingText { found }),
            },
        }
    }

    fn lit_step<const EMIT: bool>(
        &mut self,
        lit: Lit,
        idx: u8,
        c: char,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseErrorKind> {
        if lit == Lit::Open && idx == 2 {
            self.state = match c {
                't' => State::Lit {
                    lit: Lit::ThoughtStart,
                    idx: 3,
                },
                'a' => State::Lit {
                    lit: Lit::ActionStart,
                    idx: 3,
                },
                found => {
                    return Err(ParseErrorKind::UnexpectedChar {
                        found,
                        expected: "`<|thought_start|>` or `<|action_start|>`",
                    });
                }
            };
            return Ok(());
        }
        let text = lit.text();
        let matches = c.is_ascii() && text.get(usize::from(idx)).copied() == Some(c as u8);
        if !matches {
            return Err(match lit {
                Lit::Open => ParseErrorKind::UnexpectedChar {
                    found: c,
                    expected: "`<|thought_start|>` or `<|action_start|>`",
                },
                Lit::ThoughtStart => ParseErrorKind::UnexpectedChar {
                    found: c,
                    expected: "`<|thought_start|>`",
                },
                Lit::ThoughtEnd => ParseErrorKind::UnexpectedChar {
                    found: c,
                    expected: "`<|thought_end|>` (a thought cannot contain `<|`)",
                },
                Lit::ActionStart if self.thought.is_some() => {
                    ParseErrorKind::MissingActionStart { found: Some(c) }
                }
                Lit::ActionStart => ParseErrorKind::UnexpectedChar {
                    found: c,
                    expected: "`<|action_start|>`",
                },
                Lit::ActionEnd => ParseErrorKind::MissingActionEnd { found: Some(c) },
            });
        }
        let idx = idx + 1;
        if usize::from(idx) < text.len() {
            self.state = State::Lit { lit, idx };
            return Ok(());
        }
        match lit {
            Lit::Open => self.state = State::Lit { lit, idx },
            Lit::ThoughtStart => {
                self.thought = Some(String::new());
                self.state = State::ThoughtText;
            }
            Lit::ThoughtEnd => {
                if let Some(t) = &mut self.thought {
                    let trimmed = t.trim_ascii();
                    if trimmed.len() != t.len() {
                        *t = trimmed.to_owned();
                    }
                    if EMIT {
                        out.push(StreamEvent::Thought(t.clone()));
                    }
                }
                self.state = State::AfterThought;
            }
            Lit::ActionStart => {
                self.marked = true;
                self.state = State::AfterActionStart;
            }
            Lit::ActionEnd => self.complete::<EMIT>(out),
        }
        Ok(())
    }

    /// First character of number `field`.
    fn start_number(&mut self, field: u8, c: char) -> Result<(), ParseErrorKind> {
        match c {
            '-' => {
                self.state = State::NumMinus { field };
                Ok(())
            }
            '0'..='9' => self.digit(field, false, 0, c),
            '+' => Err(malformed(field, NumberProblem::PlusSign)),
            found => Err(ParseErrorKind::UnexpectedChar {
                found,
                expected: expect_number(field),
            }),
        }
    }

    /// Appends digit `c` to a number whose magnitude so far is `value`.
    #[inline]
    fn digit(&mut self, field: u8, neg: bool, value: u16, c: char) -> Result<(), ParseErrorKind> {
        let d = c as u16 - u16::from(b'0');
        let value = value * 10 + d;
        let f = NumberField::from_index(field);
        if i32::from(value) > f.max() {
            return Err(ParseErrorKind::NumberOutOfRange { field: f });
        }
        self.state = State::NumDigits { field, neg, value };
        Ok(())
    }

    #[inline]
    fn digits_step<const EMIT: bool>(
        &mut self,
        field: u8,
        neg: bool,
        value: u16,
        c: char,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseErrorKind> {
        match c {
            '0'..='9' if value == 0 => Err(malformed(field, NumberProblem::LeadingZero)),
            '0'..='9' => self.digit(field, neg, value, c),
            _ => {
                // The number is complete.
                let v = i32::from(value);
                if let Some(slot) = self.numbers.get_mut(usize::from(field)) {
                    *slot = if neg { -v } else { v };
                }
                match (field, c) {
                    (0 | 1, ' ' | '\t') => {
                        self.state = State::NumSep { field: field + 1 };
                        Ok(())
                    }
                    (2, ';') => {
                        self.open_groups::<EMIT>(out);
                        Ok(())
                    }
                    (2, '<') if self.marked => Err(ParseErrorKind::MissingGroup { found: 0 }),
                    (2, c) if is_ws(c) => {
                        self.state = State::AfterDz;
                        Ok(())
                    }
                    (0, found) => Err(ParseErrorKind::UnexpectedChar {
                        found,
                        expected: "a digit, or a space and the DY number",
                    }),
                    (1, found) => Err(ParseErrorKind::UnexpectedChar {
                        found,
                        expected: "a digit, or a space and the DZ number",
                    }),
                    (_, found) => Err(ParseErrorKind::UnexpectedChar {
                        found,
                        expected: "a digit, or `;` and the first key group",
                    }),
                }
            }
        }
    }

    /// The first `;`: the numbers are final.
    fn open_groups<const EMIT: bool>(&mut self, out: &mut Vec<StreamEvent>) {
        if EMIT {
            let [dx, dy, dz] = self.numbers;
            out.push(StreamEvent::Mouse { dx, dy, dz });
        }
        self.group = 0;
        self.taken = 0;
        self.state = State::GroupWs;
    }

    fn current_chunk(&self) -> Chunk {
        self.chunks
            .get(usize::from(self.group))
            .copied()
            .unwrap_or(Chunk::EMPTY)
    }

    /// A `;` inside the groups: closes the current group.
    fn close_group<const EMIT: bool>(
        &mut self,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ParseErrorKind> {
        if usize::from(self.group) + 1 >= CHUNKS_PER_ACTION {
            return Err(ParseErrorKind::ExtraGroup);
        }
        if EMIT {
            out.push(StreamEvent::Chunk {
                index: usize::from(self.group),
                chunk: self.current_chunk(),
            });
        }
        self.group += 1;
        self.taken = 0;
        self.state = State::GroupWs;
        Ok(())
    }

    /// A `<` inside the groups: only `<|action_end|>` after the sixth group
    /// of an action that began with `<|action_start|>`.
    fn group_marker(&mut self) -> Result<(), ParseErrorKind> {
        if !self.marked {
            return Err(ParseErrorKind::UnexpectedChar {
                found: '<',
                expected: "a key name, `;` or the end of the input (an action ending with \
                           `<|action_end|>` begins with `<|action_start|>`)",
            });
        }
        if usize::from(self.group) + 1 < CHUNKS_PER_ACTION {
            return Err(ParseErrorKind::MissingGroup {
                found: usize::from(self.group) + 1,
            });
        }
        self.state = State::Lit {
            lit: Lit::ActionEnd,
            idx: 1,
        };
        Ok(())
    }

    /// One more character of a key name.
    #[inline]
    fn name_char(
        &mut self,
        trie: &Trie,
        vocab: &KeyVocabulary,
        c: char,
    ) -> Result<(), ParseErrorKind> {
        let before = self.node;
        let next = if c.is_ascii() {
            trie.step(before, c as u8)
        } else {
            let mut buf = [0u8; 4];
            trie.walk(before, c.encode_utf8(&mut buf))
        };
        let Some(node) = next else {
            let mut name = String::from_utf8_lossy(&trie.prefix(before)).into_owned();
            name.push(c);
            return Err(ParseErrorKind::UnknownKey { name });
        };
        // With an empty group every name is still possible.
        if self.taken != 0 && !trie.viable(node, self.taken) {
            // Every name through here is already in the group.
            return Err(self.duplicate(trie, vocab, node));
        }
        self.node = node;
        Ok(())
    }

    /// The error for a name prefix whose only completions are already in
    /// the group.
    fn duplicate(&self, trie: &Trie, vocab: &KeyVocabulary, node: Node) -> ParseErrorKind {
        let chunk = self.current_chunk();
        let key = chunk.iter().find(|&k| trie.key_in_subtree(node, k));
        let name = key.and_then(|k| vocab.name(k)).map_or_else(
            || String::from_utf8_lossy(&trie.prefix(node)).into_owned(),
            str::to_owned,
        );
        ParseErrorKind::DuplicateKey {
            group: usize::from(self.group),
            name,
        }
    }

    /// The name in progress ends (at whitespace, `;`, `<` or the end).
    #[inline]
    fn end_name(&mut self, trie: &Trie, vocab: &KeyVocabulary) -> Result<(), ParseErrorKind> {
        let Some(key) = trie.key(self.node) else {
            let name = String::from_utf8_lossy(&trie.prefix(self.node)).into_owned();
            return Err(ParseErrorKind::UnknownKey { name });
        };
        let group = usize::from(self.group);
        if self.taken & key.bit() != 0 {
            return Err(self.duplicate(trie, vocab, self.node));
        }
        if let Some(chunk) = self.chunks.get_mut(group) {
            // Not full (checked when the name began) and not a duplicate.
            if chunk.push(key).is_err() {
                return Err(ParseErrorKind::TooManyKeys { group });
            }
        }
        self.taken |= key.bit();
        self.state = State::GroupWs;
        Ok(())
    }

    /// The turn is complete: report the last chunk and the turn.
    fn complete<const EMIT: bool>(&mut self, out: &mut Vec<StreamEvent>) {
        let [dx, dy, dz] = self.numbers;
        let turn = Turn {
            thought: self.thought.take(),
            action: Action {
                dx,
                dy,
                dz,
                chunks: self.chunks,
            },
        };
        if EMIT {
            out.push(StreamEvent::Chunk {
                index: CHUNKS_PER_ACTION - 1,
                chunk: self.chunks[5],
            });
            out.push(StreamEvent::End(turn.clone()));
        }
        self.turn = Some(turn);
        self.state = State::Done;
    }
}

fn expect_number(field: u8) -> &'static str {
    EXPECT_NUMBER
        .get(usize::from(field))
        .copied()
        .unwrap_or(EXPECT_NUMBER[0])
}

fn malformed(field: u8, problem: NumberProblem) -> ParseErrorKind {
    ParseErrorKind::MalformedNumber {
        field: NumberField::from_index(field),
        problem,
    }
}
