//! A character-level automaton of the canonical turn, for constrained and
//! speculative decoding.
//!
//! The grammar accepts exactly the text [`Turn::format_model`] writes for
//! valid turns, a sub-language of what the parser accepts:
//!
//! ```text
//! turn    = [ "<|thought_start|>" thought "<|thought_end|>" ]
//!           "<|action_start|>" number " " number " " number 6*group "<|action_end|>"
//! group   = " ;" *( " " name )          ; 0..=4 distinct names
//! number  = "0" | [ "-" ] nonzero *digit ; within -999..=999 (DZ: -5..=5)
//! thought = free text without "<|", no leading/trailing ASCII whitespace,
//!           at most `max_thought_chars` characters
//! ```
//!
//! Every state reachable from [`Grammar::start`] can still reach acceptance:
//! a character is allowed only if some completion exists (a key name prefix
//! is allowed only while some name through it is not yet in the group, a
//! space after four keys in the sixth group is not allowed, and so on). So a
//! decoder that only ever picks allowed characters always finishes with a
//! valid turn.
//!
//! # Compiling against a tokenizer
//!
//! A decoder works with tokens, not characters. For a state `s` and a token
//! whose decoded text is `t` (e.g. ` Shift`, ` ;`, `9`, `<|action_end|>`),
//! `grammar.advance(s, t)` is the state after the token, or `None` if the
//! token is not allowed. The token mask of `s` is the set of tokens with
//! `Some`. States are small `Copy + Hash` values, so a decoder memoises
//! `(state, token) → Option<state>` (or the whole mask per state) in a hash
//! map, filling it lazily for the states it actually visits: the reachable
//! state space is too large to enumerate up front (every number value, every
//! set of keys held so far in a group, every thought length), but the states
//! visited in practice repeat from step to step. To cut the work per state,
//! walk the token vocabulary as a trie of token texts from `s`, pruning a
//! subtree as soon as a prefix fails. Special tokens whose text is a marker
//! advance through the marker's characters like any other text.
//!
//! [`Grammar::forced`] gives the text that must come next whatever the model
//! does (` ; ` after the scroll number, `<|action_end|>` after a full sixth
//! group, `<|action_start|>` after the thought); a speculative decoder
//! proposes it, and likely continuations the grammar allows (the previous
//! chunk's keys), for verification in one forward pass.

use crate::action::{ACTION_END, ACTION_START, NumberField, THOUGHT_END, THOUGHT_START, Turn};
use crate::chunk::Chunk;
use crate::vocab::{KeyVocabulary, Node, Trie};

/// Options of a [`Grammar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrammarOptions {
    /// Whether a turn may open with a thought (the reasoning mode).
    pub allow_thought: bool,
    /// Most characters (Unicode scalar values) in a thought.
    pub max_thought_chars: usize,
}

impl Default for GrammarOptions {
    /// Thoughts allowed, up to 512 characters.
    fn default() -> Self {
        GrammarOptions {
            allow_thought: true,
            max_thought_chars: 512,
        }
    }
}

/// The characters that may come next in some [`GrammarState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedChars {
    /// Exactly these, in ascending order (empty once the turn is accepted).
    Only(Vec<char>),
    /// Thought text: any character except the excluded ones.
    AnyExcept {
        /// ASCII whitespace (space, tab, LF, FF, CR) is excluded: the thought
        /// would start or end with it.
        ascii_whitespace: bool,
        /// `|` is excluded: after a `<` that must be text, it would make
        /// `<|` inside the thought.
        pipe: bool,
    },
}

impl AllowedChars {
    /// True when `c` may come next.
    #[must_use]
    pub fn contains(&self, c: char) -> bool {
        match self {
            AllowedChars::Only(chars) => chars.binary_search(&c).is_ok(),
            AllowedChars::AnyExcept {
                ascii_whitespace,
                pipe,
            } => !(*ascii_whitespace && c.is_ascii_whitespace() || *pipe && c == '|'),
        }
    }

    /// True when no character may come next.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        matches!(self, AllowedChars::Only(chars) if chars.is_empty())
    }
}

/// A marker of the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lit {
    /// `<|` at the start of a turn that may have a thought.
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
            Lit::ThoughtStart => THOUGHT_START.as_bytes(),
            Lit::ThoughtEnd => THOUGHT_END.as_bytes(),
            Lit::ActionStart => ACTION_START.as_bytes(),
            Lit::ActionEnd => ACTION_END.as_bytes(),
        }
    }
}

/// Where in the canonical form a state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pos {
    /// `idx` characters of a marker matched.
    Lit { lit: Lit, idx: u8 },
    /// Thought text: `chars` characters so far, the last one ASCII
    /// whitespace (`last_ws`), and a `<` pending that is either text or the
    /// start of `<|thought_end|>` (`lt`, not counted in `chars`).
    Thought { chars: u32, last_ws: bool, lt: bool },
    /// First character of number `field`.
    NumStart { field: u8 },
    /// After the `-` of number `field`.
    NumMinus { field: u8 },
    /// Digits of number `field`, magnitude `value` so far.
    NumDigits { field: u8, value: u16 },
    /// After `DZ `, before the first `;`.
    AfterDz,
    /// Right after the `;` that opens `group`.
    GroupOpen { group: u8 },
    /// After a space in `group`: a name or the next `;`.
    GroupSpace { group: u8 },
    /// Inside a name in `group`, at the state's trie node.
    GroupKey { group: u8 },
    /// After `<|action_end|>`.
    Accept,
}

/// A state of the [`Grammar`] automaton: small, `Copy`, hashable.
///
/// Fields that do not matter in a position are reset, so two ways of
/// reaching the same position give equal states (good for memoising).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrammarState {
    pos: Pos,
    /// Keys already in the current group.
    chunk: Chunk,
    /// Trie node of the name in progress.
    node: Node,
}

impl GrammarState {
    fn at(pos: Pos) -> GrammarState {
        GrammarState {
            pos,
            chunk: Chunk::EMPTY,
            node: Trie::ROOT,
        }
    }

    /// True inside the free-text thought (where [`AllowedChars::AnyExcept`]
    /// applies).
    #[must_use]
    pub fn in_thought(&self) -> bool {
        matches!(self.pos, Pos::Thought { .. })
    }

    /// The 0-based key group the state is in, once the first `;` is passed.
    #[must_use]
    pub fn group(&self) -> Option<usize> {
        match self.pos {
            Pos::GroupOpen { group } | Pos::GroupSpace { group } | Pos::GroupKey { group } => {
                Some(usize::from(group))
            }
            _ => None,
        }
    }

    /// The keys written so far in the current group.
    #[must_use]
    pub fn chunk(&self) -> &Chunk {
        &self.chunk
    }
}

/// The canonical action language as a character automaton.
#[derive(Debug, Clone)]
pub struct Grammar {
    vocab: KeyVocabulary,
    options: GrammarOptions,
    /// `options.max_thought_chars`, clamped so that `+ 2` cannot overflow.
    max_thought: u32,
}

/// Upper bound on [`Grammar::forced`]'s length: a safety net, far above the
/// longest possible forced run (two markers and a few separators).
const MAX_FORCED: usize = 4096;

impl Grammar {
    /// The grammar of turns using `vocab`'s key names.
    #[must_use]
    pub fn new(vocab: &KeyVocabulary, options: GrammarOptions) -> Grammar {
        let max_thought = u32::try_from(options.max_thought_chars)
            .unwrap_or(u32::MAX)
            .min(u32::MAX - 2);
        Grammar {
            vocab: vocab.clone(),
            options,
            max_thought,
        }
    }

    /// The options it was built with.
    #[must_use]
    pub fn options(&self) -> GrammarOptions {
        self.options
    }

    /// The vocabulary it was built with.
    #[must_use]
    pub fn vocabulary(&self) -> &KeyVocabulary {
        &self.vocab
    }

    /// The state at the start of a turn.
    #[must_use]
    pub fn start(&self) -> GrammarState {
        let lit = if self.options.allow_thought {
            Lit::Open
        } else {
            Lit::ActionStart
        };
        GrammarState::at(Pos::Lit { lit, idx: 0 })
    }

    /// True after `<|action_end|>`: the turn is complete.
    #[must_use]
    pub fn is_accepting(&self, state: GrammarState) -> bool {
        state.pos == Pos::Accept
    }

    /// The state after `text` (any number of characters, e.g. a whole token
    /// such as ` Shift`), or `None` if some character of it is not allowed.
    #[must_use]
    pub fn advance(&self, state: GrammarState, text: &str) -> Option<GrammarState> {
        text.chars().try_fold(state, |s, c| self.advance_char(s, c))
    }

    /// True when the grammar accepts the whole of `text`.
    #[must_use]
    pub fn accepts(&self, text: &str) -> bool {
        self.advance(self.start(), text)
            .is_some_and(|s| self.is_accepting(s))
    }

    /// The state after one character, or `None` if it is not allowed.
    #[must_use]
    pub fn advance_char(&self, state: GrammarState, c: char) -> Option<GrammarState> {
        let trie = self.vocab.trie();
        match state.pos {
            Pos::Lit {
                lit: Lit::Open,
                idx: 2,
            } => match c {
                't' => Some(GrammarState::at(Pos::Lit {
                    lit: Lit::ThoughtStart,
                    idx: 3,
                })),
                'a' => Some(GrammarState::at(Pos::Lit {
                    lit: Lit::ActionStart,
                    idx: 3,
                })),
                _ => None,
            },
            Pos::Lit { lit, idx } => {
                let text = lit.text();
                if !c.is_ascii() || text.get(usize::from(idx)).copied() != Some(c as u8) {
                    return None;
                }
                let idx = idx + 1;
                if usize::from(idx) < text.len() {
                    return Some(GrammarState::at(Pos::Lit { lit, idx }));
                }
                Some(GrammarState::at(match lit {
                    Lit::Open => Pos::Lit { lit, idx },
                    Lit::ThoughtStart => Pos::Thought {
                        chars: 0,
                        last_ws: false,
                        lt: false,
                    },
                    Lit::ThoughtEnd => Pos::Lit {
                        lit: Lit::ActionStart,
                        idx: 0,
                    },
                    Lit::ActionStart => Pos::NumStart { field: 0 },
                    Lit::ActionEnd => Pos::Accept,
                }))
            }
            Pos::Thought {
                chars,
                last_ws,
                lt: false,
            } => self.thought_char(chars, last_ws, c),
            Pos::Thought {
                chars,
                last_ws,
                lt: true,
            } => {
                if c == '|' {
                    // `<|` ends the thought, which must not end in whitespace.
                    return (!last_ws).then_some(GrammarState::at(Pos::Lit {
                        lit: Lit::ThoughtEnd,
                        idx: 2,
                    }));
                }
                // The pending `<` was text.
                if chars >= self.max_thought {
                    return None;
                }
                self.thought_char(chars + 1, false, c)
            }
            Pos::NumStart { field } => match c {
                '-' => Some(GrammarState::at(Pos::NumMinus { field })),
                _ => digit(field, 0, c),
            },
            Pos::NumMinus { field } => match c {
                '0' => None,
                _ => digit(field, 0, c),
            },
            Pos::NumDigits { field, value } => match c {
                ' ' if field < 2 => Some(GrammarState::at(Pos::NumStart { field: field + 1 })),
                ' ' => Some(GrammarState::at(Pos::AfterDz)),
                _ if value == 0 => None,
                _ => digit(field, value, c),
            },
            Pos::AfterDz => (c == ';').then_some(GrammarState::at(Pos::GroupOpen { group: 0 })),
            Pos::GroupOpen { group } => match c {
                ' ' if self.space_alive(group, &Chunk::EMPTY) => {
                    Some(GrammarState::at(Pos::GroupSpace { group }))
                }
                '<' if group == 5 => Some(GrammarState::at(Pos::Lit {
                    lit: Lit::ActionEnd,
                    idx: 1,
                })),
                _ => None,
            },
            Pos::GroupSpace { group } => match c {
                ';' if group < 5 => Some(GrammarState::at(Pos::GroupOpen { group: group + 1 })),
                _ if state.chunk.is_full() => None,
                _ => self.name_char(trie, group, state.chunk, Trie::ROOT, c),
            },
            Pos::GroupKey { group } => match c {
                ' ' => {
                    let chunk = self.with_key(trie, state)?;
                    self.space_alive(group, &chunk).then_some(GrammarState {
                        pos: Pos::GroupSpace { group },
                        chunk,
                        node: Trie::ROOT,
                    })
                }
                '<' if group == 5 => {
                    self.with_key(trie, state)?;
                    Some(GrammarState::at(Pos::Lit {
                        lit: Lit::ActionEnd,
                        idx: 1,
                    }))
                }
                _ => self.name_char(trie, group, state.chunk, state.node, c),
            },
            Pos::Accept => None,
        }
    }

    /// A thought character after `chars` committed ones.
    fn thought_char(&self, chars: u32, last_ws: bool, c: char) -> Option<GrammarState> {
        let max = self.max_thought;
        let ok = match c {
            // Text (if room), or the start of the end marker (if the thought
            // so far does not end in whitespace).
            '<' => chars < max || !last_ws,
            // Not first, and room for a non-space character after it.
            c if c.is_ascii_whitespace() => chars > 0 && chars + 1 < max,
            _ => chars < max,
        };
        if !ok {
            return None;
        }
        Some(GrammarState::at(if c == '<' {
            Pos::Thought {
                chars,
                last_ws,
                lt: true,
            }
        } else {
            Pos::Thought {
                chars: chars + 1,
                last_ws: c.is_ascii_whitespace(),
                lt: false,
            }
        }))
    }

    /// True when a space in `group` holding `chunk` can still be followed
    /// by something: another name, or (before the sixth group) `;`.
    fn space_alive(&self, group: u8, chunk: &Chunk) -> bool {
        group < 5 || (!chunk.is_full() && self.vocab.trie().viable(Trie::ROOT, chunk.mask()))
    }

    /// `chunk` plus the key whose name ends at the state's node, if that
    /// key is new to the group.
    fn with_key(&self, trie: &Trie, state: GrammarState) -> Option<Chunk> {
        let key = trie.key(state.node)?;
        let mut chunk = state.chunk;
        chunk.push(key).ok()?;
        Some(chunk)
    }

    fn name_char(
        &self,
        trie: &Trie,
        group: u8,
        chunk: Chunk,
        node: Node,
        c: char,
    ) -> Option<GrammarState> {
        let mut buf = [0u8; 4];
        let node = trie.walk(node, c.encode_utf8(&mut buf))?;
        trie.viable(node, chunk.mask()).then_some(GrammarState {
            pos: Pos::GroupKey { group },
            chunk,
            node,
        })
    }

    /// The characters that may come next.
    #[must_use]
    pub fn allowed_next_chars(&self, state: GrammarState) -> AllowedChars {
        let max = self.max_thought;
        match state.pos {
            Pos::Thought {
                chars,
                last_ws,
                lt: false,
            } => {
                if chars >= max {
                    // Only the end marker; `last_ws` is false here, as a
                    // space is never allowed as the last character.
                    AllowedChars::Only(if last_ws { vec![] } else { vec!['<'] })
                } else {
                    AllowedChars::AnyExcept {
                        ascii_whitespace: !(chars > 0 && chars + 1 < max),
                        pipe: false,
                    }
                }
            }
            Pos::Thought {
                chars,
                last_ws,
                lt: true,
            } => {
                if chars >= max {
                    AllowedChars::Only(if last_ws { vec![] } else { vec!['|'] })
                } else if chars + 1 >= max {
                    // `<` is the last text character: only the marker follows.
                    let mut v = vec!['<'];
                    if !last_ws {
                        v.push('|');
                    }
                    AllowedChars::Only(v)
                } else {
                    AllowedChars::AnyExcept {
                        ascii_whitespace: chars + 2 >= max,
                        pipe: last_ws,
                    }
                }
            }
            _ => {
                // Outside the thought only ASCII syntax and name characters
                // can occur: try each candidate.
                let mut candidates: Vec<char> = (' '..='~').chain(['\t', '\n', '\r']).collect();
                let mut names = Vec::new();
                let trie = self.vocab.trie();
                match state.pos {
                    Pos::GroupSpace { .. } => trie.next_chars(Trie::ROOT, &mut names),
                    Pos::GroupKey { .. } => trie.next_chars(state.node, &mut names),
                    _ => {}
                }
                candidates.extend(names.iter().map(|(c, _)| *c));
                candidates.retain(|&c| self.advance_char(state, c).is_some());
                candidates.sort_unstable();
                candidates.dedup();
                AllowedChars::Only(candidates)
            }
        }
    }

    /// The longest text that must come next whatever the choice (empty when
    /// there is a choice or the turn is accepted), e.g. ` ; ` after
    /// `<|action_start|>92 0 0`, `<|action_end|>` after four keys in the
    /// sixth group, `<|action_start|>` after `<|thought_end|>`.
    #[must_use]
    pub fn forced(&self, state: GrammarState) -> String {
        let mut out = String::new();
        let mut state = state;
        while out.len() < MAX_FORCED {
            let c = match self.allowed_next_chars(state) {
                AllowedChars::Only(chars) if chars.len() == 1 => chars[0],
                _ => break,
            };
            match self.advance_char(state, c) {
                Some(next) => state = next,
                None => break,
            }
            out.push(c);
        }
        out
    }

    /// True when the grammar accepts `turn`'s canonical model text
    /// ([`Turn::format_model`]).
    #[must_use]
    pub fn accepts_turn(&self, turn: &Turn) -> bool {
        self.accepts(&turn.format_model(&self.vocab))
    }
}

/// Digit `c` appended to magnitude `value` of number `field`.
fn digit(field: u8, value: u16, c: char) -> Option<GrammarState> {
    let d = c.to_digit(10)?;
    let value = u32::from(value) * 10 + d;
    let max = NumberField::from_index(field).max().unsigned_abs();
    if value > max {
        return None;
    }
    let value = u16::try_from(value).ok()?;
    Some(GrammarState::at(Pos::NumDigits { field, value }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_turn;

    fn grammar(allow_thought: bool) -> Grammar {
        Grammar::new(
            &KeyVocabulary::default(),
            GrammarOptions {
                allow_thought,
                max_thought_chars: 16,
            },
        )
    }

    fn only(chars: &str) -> AllowedChars {
        let mut v: Vec<char> = chars.chars().collect();
        v.sort_unstable();
        AllowedChars::Only(v)
    }

    #[test]
    fn accepts_canonical_turns() {
        let g = grammar(true);
        for text in [
            "<|action_start|>92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F<|action_end|>",
            "<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>-999 999 -5 ; A B C D ; ; ; ; ; A B C D<|action_end|>",
            "<|thought_start|>向前走<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|thought_start|><|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|thought_start|>a <b<<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
        ] {
            assert!(g.accepts(text), "{text}");
            let turn = parse_turn(text, g.vocabulary()).unwrap();
            assert_eq!(turn.format_model(g.vocabulary()), text);
        }
    }

    #[test]
    fn rejects_non_canonical() {
        let g = grammar(true);
        for text in [
            "92 0 0 ; ; ; ; ; ;",
            "<|action_start|>92 0 0 ; ; ; ; ; ; <|action_end|>",
            "<|action_start|>92  0 0 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>92 0 0 ;; ; ; ; ;<|action_end|>",
            "<|action_start|>-0 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>01 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>1000 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>0 0 6 ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>0 0 0 ; W W ; ; ; ; ;<|action_end|>",
            "<|action_start|>0 0 0 ; A B C D E ; ; ; ; ;<|action_end|>",
            "<|action_start|>0 0 0 ; ; ; ; ; ; ;<|action_end|>",
            "<|action_start|>0 0 0 ; ; ; ; ;<|action_end|>",
            "<|thought_start|> a<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
            "<|thought_start|>a <|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
        ] {
            assert!(!g.accepts(text), "{text}");
        }
        let no_thought = grammar(false);
        assert!(!no_thought.accepts(
            "<|thought_start|>a<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>"
        ));
        assert!(no_thought.accepts("<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>"));
    }

    #[test]
    fn forced_continuations() {
        let g = grammar(false);
        assert_eq!(g.forced(g.start()), "<|action_start|>");
        let s = g.advance(g.start(), "<|action_start|>92 0 0").unwrap();
        assert_eq!(g.forced(s), " ; ");
        let s = g.advance(g.start(), "<|action_start|>92").unwrap();
        assert_eq!(g.forced(s), "");
        let s = g.advance(g.start(), "<|action_start|>0").unwrap();
        assert_eq!(g.forced(s), " ");
        let s = g
            .advance(g.start(), "<|action_start|>0 0 0 ; ; ; ; ; ; A B C Z")
            .unwrap();
        assert_eq!(g.forced(s), "<|action_end|>");
        let s = g
            .advance(g.start(), "<|action_start|>0 0 0 ; A B C Z")
            .unwrap();
        assert_eq!(g.forced(s), " ; ");
        let s = g.advance(g.start(), "<|action_start|>0 0 0 ; Shi").unwrap();
        assert_eq!(g.forced(s), "ft ");
        let s = g
            .advance(g.start(), "<|action_start|>0 0 0 ; ; ; ; ; ; XB")
            .unwrap();
        assert_eq!(g.forced(s), "");
        let g = grammar(true);
        assert_eq!(g.forced(g.start()), "<|");
        let s = g.advance(g.start(), "<|t").unwrap();
        assert_eq!(g.forced(s), "hought_start|>");
        let s = g
            .advance(g.start(), "<|thought_start|>plan<|thought_end|>")
            .unwrap();
        assert_eq!(g.forced(s), "<|action_start|>");
        let s = g
            .advance(g.start(), "<|thought_start|>0123456789abcdef")
            .unwrap();
        assert_eq!(g.forced(s), "<|thought_end|><|action_start|>");
    }

    #[test]
    fn allowed_sets() {
        let g = grammar(true);
        assert_eq!(g.allowed_next_chars(g.start()), only("<"));
        let s = g.advance(g.start(), "<|").unwrap();
        assert_eq!(g.allowed_next_chars(s), only("at"));
        let s = g.advance(g.start(), "<|action_start|>").unwrap();
        assert_eq!(g.allowed_next_chars(s), only("-0123456789"));
        let s = g.advance(g.start(), "<|action_start|>1 2 ").unwrap();
        assert_eq!(g.allowed_next_chars(s), only("-012345"));
        let s = g.advance(g.start(), "<|action_start|>1 2 -").unwrap();
        assert_eq!(g.allowed_next_chars(s), only("12345"));
        let s = g.advance(g.start(), "<|action_start|>99").unwrap();
        assert_eq!(g.allowed_next_chars(s), only(" 0123456789"));
        let s = g.advance(g.start(), "<|action_start|>0 0 0 ; W ").unwrap();
        let AllowedChars::Only(v) = g.allowed_next_chars(s) else {
            panic!()
        };
        assert!(v.contains(&';') && v.contains(&'S') && v.contains(&'o'));
        // `W` is taken and no other name starts with `W`.
        assert!(!v.contains(&'W') && !v.contains(&'<'));
        let s = g
            .advance(g.start(), "<|action_start|>0 0 0 ; ; ; ; ; ; W")
            .unwrap();
        assert_eq!(g.allowed_next_chars(s), only(" <"));
        let s = g
            .advance(g.start(), "<|action_start|>0 0 0 ; ; ; ; ; ;")
            .unwrap();
        assert_eq!(g.allowed_next_chars(s), only(" <"));
        let s = g.advance(g.start(), "<|thought_start|>").unwrap();
        assert_eq!(
            g.allowed_next_chars(s),
            AllowedChars::AnyExcept {
                ascii_whitespace: true,
                pipe: false
            }
        );
        assert!(s.in_thought());
        let s = g.advance(g.start(), "<|thought_start|>a").unwrap();
        assert_eq!(
            g.allowed_next_chars(s),
            AllowedChars::AnyExcept {
                ascii_whitespace: false,
                pipe: false
            }
        );
        let s = g.advance(g.start(), "<|thought_start|>a <").unwrap();
        assert_eq!(
            g.allowed_next_chars(s),
            AllowedChars::AnyExcept {
                ascii_whitespace: false,
                pipe: true
            }
        );
        let done = g
            .advance(g.start(), "<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>")
            .unwrap();
        assert!(g.is_accepting(done));
        assert!(g.allowed_next_chars(done).is_empty());
        assert_eq!(g.forced(done), "");
    }

    #[test]
    fn multi_char_tokens() {
        let g = grammar(false);
        let mut s = g.start();
        for token in [
            "<|action_start|>",
            "9",
            "2",
            " 0",
            " 0",
            " ;",
            " Shift",
            " W",
            " ;",
        ] {
            s = g.advance(s, token).unwrap();
        }
        assert_eq!(s.group(), Some(1));
        assert!(g.advance(s, " Shift").is_some());
        assert!(g.advance(s, " Shx").is_none());
        assert!(g.advance(s, "  ").is_none());
    }

    #[test]
    fn non_ascii_names() {
        let vocab = KeyVocabulary::new([("跳", crate::Key::Space), ("跑", crate::Key::W)]).unwrap();
        let g = Grammar::new(
            &vocab,
            GrammarOptions {
                allow_thought: false,
                max_thought_chars: 0,
            },
        );
        let s = g.advance(g.start(), "<|action_start|>0 0 0 ; 跳 ").unwrap();
        assert_eq!(g.allowed_next_chars(s), only(";跑"));
        let s = g.advance(s, "跑 ; ; ; ; ; 跳 跑").unwrap();
        assert_eq!(g.forced(s), "<|action_end|>");
    }
}
