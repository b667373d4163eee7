//! Grammar-constrained decoding: the action grammar ([`lumine_action::Grammar`],
//! a character automaton of the canonical turn) compiled against a tokenizer's
//! vocabulary into per-state token masks.
//!
//! * [`VocabIndex`] holds every token id's text as bytes (byte-level BPE tokens are
//!   mapped back through the GPT-2 byte alphabet, so a token may end inside a
//!   UTF-8 character), sorted so that tokens sharing a prefix are walked once. It
//!   depends only on the tokenizer: build it once per model ([`crate::Model::vocab_index`]).
//! * [`TokenGrammar`] runs the grammar over token bytes and memoises the mask of
//!   each state it meets ([`ConstrainedState`]); the states met in practice repeat
//!   from step to step, so masks are compiled lazily and kept.
//!
//! Rules at the token level, on top of the character grammar:
//! * A partial UTF-8 character is allowed only where some character starting with
//!   those bytes is allowed (in a thought: any non-ASCII character; in a key name:
//!   a name's next character).
//! * The markers (`<|action_start|>` ...) come only as the tokenizer's special
//!   tokens, never spelled out by ordinary tokens: an ordinary token may not write
//!   `|` right after `<`, and a token may not end in a `<` that could then only be
//!   continued by `|`. Other added/special tokens (`<|im_end|>`, ...) are never
//!   allowed: the grammar has no place for them. Ids past the tokenizer's
//!   vocabulary (padding rows of the logits) are never allowed.
//!
//! With these rules every state a constrained decoder reaches can still complete
//! a turn, as long as the vocabulary can spell every character the grammar needs
//! one byte at a time (byte-level BPE can) and has the markers as special tokens
//! (a Lumine tokenizer does; [`crate::Model::load`] checks).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use lumine_action::{AllowedChars, Grammar, GrammarState};

use crate::tokenizer::Tokenizer;

/// How a token id may be used by the constrained decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Ordinary text: its bytes go through the grammar one by one.
    Text,
    /// An added token (the markers, `<|im_end|>`, ...): used whole or not at all.
    Atomic,
    /// Never allowed (an id the tokenizer does not define, or text that cannot be
    /// recovered).
    Never,
}

/// One token's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenText {
    /// The bytes it writes (possibly part of a UTF-8 character).
    pub bytes: Vec<u8>,
    /// How it may be used.
    pub kind: TokenKind,
}

/// A tokenizer's vocabulary as bytes, indexed for walking a grammar.
#[derive(Debug)]
pub struct VocabIndex {
    tokens: Vec<TokenText>,
    /// `Text` token ids sorted by bytes.
    order: Vec<u32>,
    /// `lcp[i]`: length of the common prefix of `order[i - 1]` and `order[i]`.
    lcp: Vec<u16>,
    /// `order[buckets[b]..buckets[b + 1]]` start with byte `b`.
    buckets: Vec<usize>,
    /// `Atomic` token ids.
    atomic: Vec<u32>,
}

/// The GPT-2 byte-level alphabet: printable bytes stand for themselves, the other
/// 68 bytes map to U+0100 onwards. Returns char → byte.
fn byte_level_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0..=255u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        if let (Some(c), Ok(byte)) = (char::from_u32(c), u8::try_from(b)) {
            map.insert(c, byte);
        }
    }
    map
}

impl VocabIndex {
    /// Indexes `tokenizer`'s vocabulary for a model whose logits have `vocab_size`
    /// entries (ids the tokenizer lacks are [`TokenKind::Never`]).
    ///
    /// Byte-level BPE (Qwen2's tokenizer) is read exactly: each vocabulary entry is
    /// mapped back to its bytes. For other tokenizers each id is decoded alone, and
    /// an id whose text is not whole UTF-8 is never allowed.
    pub fn from_tokenizer(tokenizer: &Tokenizer, vocab_size: usize) -> Self {
        let inner = tokenizer.inner();
        let added = inner.get_added_tokens_decoder();
        let byte_level = matches!(
            inner.get_decoder(),
            Some(tokenizers::DecoderWrapper::ByteLevel(_))
        );
        let alphabet = byte_level_decoder();
        let tokens = (0..vocab_size)
            .map(|id| {
                let id32 = u32::try_from(id).unwrap_or(u32::MAX);
                if let Some(token) = added.get(&id32) {
                    return TokenText {
                        bytes: token.content.as_bytes().to_vec(),
                        kind: TokenKind::Atomic,
                    };
                }
                let Some(piece) = inner.id_to_token(id32) else {
                    return never();
                };
                if byte_level {
                    let bytes: Option<Vec<u8>> =
                        piece.chars().map(|c| alphabet.get(&c).copied()).collect();
                    return bytes.map_or_else(never, |bytes| TokenText {
                        bytes,
                        kind: TokenKind::Text,
                    });
                }
                match inner.decode(&[id32], false) {
                    Ok(text) if !text.is_empty() && !text.contains('\u{FFFD}') => TokenText {
                        bytes: text.into_bytes(),
                        kind: TokenKind::Text,
                    },
                    _ => never(),
                }
            })
            .collect();
        Self::from_tokens(tokens)
    }

    /// Indexes an explicit vocabulary (id = position).
    pub fn from_tokens(mut tokens: Vec<TokenText>) -> Self {
        for token in &mut tokens {
            if token.bytes.is_empty() {
                token.kind = TokenKind::Never;
            }
        }
        let mut order: Vec<u32> = (0..tokens.len())
            .filter(|&i| tokens[i].kind == TokenKind::Text)
            .map(|i| i as u32)
            .collect();
        order.sort_by(|&a, &b| {
            tokens[a as usize]
                .bytes
                .cmp(&tokens[b as usize].bytes)
                .then(a.cmp(&b))
        });
        let lcp = order
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let Some(&prev) = i.checked_sub(1).and_then(|p| order.get(p)) else {
                    return 0;
                };
                let (a, b) = (&tokens[prev as usize].bytes, &tokens[id as usize].bytes);
                let common = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
                u16::try_from(common).unwrap_or(u16::MAX)
            })
            .collect();
        let mut buckets = vec![0usize; 257];
        for &id in &order {
            buckets[usize::from(tokens[id as usize].bytes[0]) + 1] += 1;
        }
        for b in 0..256 {
            buckets[b + 1] += buckets[b];
        }
        let atomic = (0..tokens.len())
            .filter(|&i| tokens[i].kind == TokenKind::Atomic)
            .map(|i| i as u32)
            .collect();
        Self {
            tokens,
            order,
            lcp,
            buckets,
            atomic,
        }
    }

    /// Number of ids (the width of a logits row).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The text of token `id`.
    pub fn token(&self, id: u32) -> Option<&TokenText> {
        self.tokens.get(id as usize)
    }

    /// The bytes token `id` writes (empty for unknown ids).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.token(id).map_or(&[], |t| &t.bytes)
    }

    /// The id of the added (atomic) token spelled `text`, e.g. `<|thought_end|>`.
    pub fn atomic_id(&self, text: &str) -> Option<u32> {
        self.atomic
            .iter()
            .copied()
            .find(|&id| self.bytes(id) == text.as_bytes())
    }
}

fn never() -> TokenText {
    TokenText {
        bytes: Vec::new(),
        kind: TokenKind::Never,
    }
}

/// A position in the constrained decoding of one turn: the grammar state plus the
/// bytes of a UTF-8 character still incomplete at a token boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConstrainedState {
    grammar: GrammarState,
    pending: [u8; 3],
    pending_len: u8,
    /// The last character written was `<` (an ordinary token may not follow it with `|`).
    last_lt: bool,
}

impl ConstrainedState {
    /// The grammar state (characters complete so far).
    pub fn grammar(&self) -> GrammarState {
        self.grammar
    }

    /// True while a UTF-8 character is incomplete.
    pub fn has_pending_bytes(&self) -> bool {
        self.pending_len > 0
    }
}

/// The tokens allowed in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenMask {
    /// Few tokens: their ids, ascending.
    Sparse(Vec<u32>),
    /// Many tokens (a thought): one bit per id.
    Dense {
        /// Bit `id % 64` of word `id / 64`.
        bits: Vec<u64>,
        /// Number of bits set.
        count: usize,
    },
}

impl TokenMask {
    fn from_sorted(ids: Vec<u32>, vocab: usize) -> Self {
        // A list costs 32 bits per allowed id, a bitset one bit per id.
        if ids.len() * 32 <= vocab {
            return Self::Sparse(ids);
        }
        let mut bits = vec![0u64; vocab.div_ceil(64)];
        for &id in &ids {
            bits[id as usize / 64] |= 1 << (id % 64);
        }
        Self::Dense {
            bits,
            count: ids.len(),
        }
    }

    /// Whether `id` is allowed.
    pub fn contains(&self, id: u32) -> bool {
        match self {
            Self::Sparse(ids) => ids.binary_search(&id).is_ok(),
            Self::Dense { bits, .. } => bits
                .get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0),
        }
    }

    /// Number of allowed ids.
    pub fn len(&self) -> usize {
        match self {
            Self::Sparse(ids) => ids.len(),
            Self::Dense { count, .. } => *count,
        }
    }

    /// Whether nothing is allowed (a dead end; never for a reachable state).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The allowed ids, ascending.
    pub fn ids(&self) -> Vec<u32> {
        match self {
            Self::Sparse(ids) => ids.clone(),
            Self::Dense { bits, .. } => bits
                .iter()
                .enumerate()
                .flat_map(|(w, &word)| {
                    (0..64u32)
                        .filter(move |b| word & (1 << b) != 0)
                        .map(move |b| w as u32 * 64 + b)
                })
                .collect(),
        }
    }

    /// The allowed id with the largest logit, the lowest id among equals (as
    /// [`crate::sampler::argmax`] over the masked row); NaN never wins; when every
    /// allowed logit is NaN or -inf, the lowest allowed id.
    pub fn argmax(&self, logits: &[f32]) -> Option<u32> {
        let mut best: Option<u32> = None;
        let mut best_value = f32::NEG_INFINITY;
        let mut first = None;
        let mut consider = |id: u32| {
            first.get_or_insert(id);
            if let Some(&v) = logits.get(id as usize)
                && v > best_value
            {
                best = Some(id);
                best_value = v;
            }
        };
        match self {
            Self::Sparse(ids) => ids.iter().copied().for_each(&mut consider),
            Self::Dense { bits, .. } => {
                for (w, &word) in bits.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        let b = word.trailing_zeros();
                        consider(w as u32 * 64 + b);
                        word &= word - 1;
                    }
                }
            }
        }
        best.or(first)
    }
}

/// Counters of a [`TokenGrammar`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MaskStats {
    /// Masks compiled (distinct states met).
    pub compiled: usize,
    /// Time spent compiling them, milliseconds.
    pub compile_ms: f64,
    /// Greedy choices answered by a memoised mask.
    pub hits: usize,
    /// Greedy choices answered by checking the best few tokens directly (thought
    /// states, whose masks are large and rarely repeat).
    pub lazy: usize,
}

/// The grammar over a vocabulary: token transitions and memoised masks.
#[derive(Debug)]
pub struct TokenGrammar {
    index: Arc<VocabIndex>,
    grammar: Grammar,
    masks: HashMap<ConstrainedState, Arc<TokenMask>>,
    allowed_chars: HashMap<GrammarState, AllowedChars>,
    stats: MaskStats,
}

/// How many of the best tokens the lazy greedy path checks before compiling a mask.
const LAZY_CANDIDATES: usize = 16;

/// Depth bound of the `<`-then-what check (each level consumes a thought character).
const LT_DEPTH: usize = 8;

impl TokenGrammar {
    /// The grammar over `index`'s tokens.
    pub fn new(index: Arc<VocabIndex>, grammar: Grammar) -> Self {
        Self {
            index,
            grammar,
            masks: HashMap::new(),
            allowed_chars: HashMap::new(),
            stats: MaskStats::default(),
        }
    }

    /// The character grammar.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The vocabulary.
    pub fn index(&self) -> &Arc<VocabIndex> {
        &self.index
    }

    /// Counters so far.
    pub fn stats(&self) -> MaskStats {
        self.stats
    }

    /// The state at the start of a turn.
    pub fn start(&self) -> ConstrainedState {
        ConstrainedState {
            grammar: self.grammar.start(),
            pending: [0; 3],
            pending_len: 0,
            last_lt: false,
        }
    }

    /// True when the turn is complete (`<|action_end|>` written).
    pub fn is_accepting(&self, state: ConstrainedState) -> bool {
        state.pending_len == 0 && self.grammar.is_accepting(state.grammar)
    }

    /// The state after token `id`, or `None` if the token is not allowed.
    /// Agrees with [`TokenGrammar::mask`]: `mask(s).contains(id) == advance(s, id).is_some()`.
    pub fn advance(&mut self, state: ConstrainedState, id: u32) -> Option<ConstrainedState> {
        let index = Arc::clone(&self.index);
        let token = index.token(id)?;
        let mut s = state;
        match token.kind {
            TokenKind::Never => return None,
            TokenKind::Atomic => {
                if s.pending_len > 0 {
                    return None;
                }
                let text = std::str::from_utf8(&token.bytes).ok()?;
                s.grammar = self.grammar.advance(s.grammar, text)?;
                s.last_lt = text.ends_with('<');
            }
            TokenKind::Text => {
                for &b in &token.bytes {
                    s = self.advance_byte(s, b)?;
                }
            }
        }
        self.token_end_ok(s).then_some(s)
    }

    /// The tokens allowed in `state`, compiled on first use and memoised.
    pub fn mask(&mut self, state: ConstrainedState) -> Arc<TokenMask> {
        if let Some(mask) = self.masks.get(&state) {
            return Arc::clone(mask);
        }
        let start = Instant::now();
        let mask = Arc::new(self.compile(state));
        self.stats.compiled += 1;
        self.stats.compile_ms += start.elapsed().as_secs_f64() * 1e3;
        self.masks.insert(state, Arc::clone(&mask));
        mask
    }

    /// The mask of `state` if it was compiled already.
    pub fn cached_mask(&self, state: ConstrainedState) -> Option<Arc<TokenMask>> {
        self.masks.get(&state).cloned()
    }

    /// The greedy choice under the mask: the allowed id with the largest logit
    /// (lowest id among equals). `None` only at a dead end.
    ///
    /// Inside a thought the mask is large and the state rarely repeats, so the best
    /// few tokens are checked directly first; the answer is the same as the masked
    /// argmax by construction (candidates are tried in (logit desc, id asc) order).
    pub fn greedy(&mut self, state: ConstrainedState, logits: &[f32]) -> Option<u32> {
        if let Some(mask) = self.masks.get(&state) {
            self.stats.hits += 1;
            return mask.argmax(logits);
        }
        if state.grammar.in_thought() || state.pending_len > 0 {
            for id in top_candidates(logits, LAZY_CANDIDATES) {
                if self.advance(state, id).is_some() {
                    self.stats.lazy += 1;
                    return Some(id);
                }
            }
        }
        self.mask(state).argmax(logits)
    }

    /// An upper bound on the largest logit of an allowed token other than `chosen`
    /// (exact when the state's mask is memoised; otherwise from the best few
    /// tokens, the last of them bounding the rest); `None` when `chosen` is the
    /// only allowed token. `logits[chosen]` minus this is how close a greedy
    /// decision was.
    pub fn runner_up(
        &mut self,
        state: ConstrainedState,
        logits: &[f32],
        chosen: u32,
    ) -> Option<f32> {
        let value = |id: u32| {
            logits
                .get(id as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY)
        };
        if let Some(mask) = self.masks.get(&state) {
            return match &**mask {
                TokenMask::Sparse(ids) => ids
                    .iter()
                    .filter(|&&id| id != chosen)
                    .map(|&id| value(id))
                    .reduce(f32::max),
                TokenMask::Dense { .. } => mask
                    .ids()
                    .into_iter()
                    .filter(|&id| id != chosen)
                    .map(value)
                    .reduce(f32::max),
            };
        }
        let candidates = top_candidates(logits, LAZY_CANDIDATES + 1);
        for &id in &candidates {
            if id != chosen && self.advance(state, id).is_some() {
                return Some(value(id));
            }
        }
        candidates.last().map(|&id| value(id))
    }

    /// One byte of an ordinary token.
    fn advance_byte(&mut self, s: ConstrainedState, b: u8) -> Option<ConstrainedState> {
        if s.pending_len == 0 && b.is_ascii() {
            if s.last_lt && b == b'|' {
                return None;
            }
            return Some(ConstrainedState {
                grammar: self.grammar.advance_char(s.grammar, char::from(b))?,
                pending: [0; 3],
                pending_len: 0,
                last_lt: b == b'<',
            });
        }
        let n = usize::from(s.pending_len);
        let mut buf = [0u8; 4];
        buf[..n].copy_from_slice(&s.pending[..n]);
        buf[n] = b;
        let bytes = &buf[..=n];
        let need = utf8_len(bytes[0])?;
        if !utf8_prefix_ok(bytes) {
            return None;
        }
        if bytes.len() == need {
            let c = std::str::from_utf8(bytes).ok()?.chars().next()?;
            return Some(ConstrainedState {
                grammar: self.grammar.advance_char(s.grammar, c)?,
                pending: [0; 3],
                pending_len: 0,
                last_lt: false,
            });
        }
        // An incomplete character: allowed if some allowed character starts so.
        let viable = match self.allowed(s.grammar) {
            // Only ASCII characters are ever excluded from thought text.
            AllowedChars::AnyExcept { .. } => true,
            AllowedChars::Only(chars) => chars.iter().any(|c| {
                let mut enc = [0u8; 4];
                c.encode_utf8(&mut enc).as_bytes().starts_with(bytes)
            }),
        };
        if !viable {
            return None;
        }
        let mut pending = [0u8; 3];
        pending[..bytes.len()].copy_from_slice(bytes);
        Some(ConstrainedState {
            grammar: s.grammar,
            pending,
            pending_len: bytes.len() as u8,
            last_lt: false,
        })
    }

    /// Whether a token may end in state `s`: a final `<` must have a continuation
    /// other than an ordinary `|`.
    fn token_end_ok(&mut self, s: ConstrainedState) -> bool {
        !s.last_lt || self.lt_viable(s.grammar, LT_DEPTH)
    }

    /// After a `<`: can the turn go on without an ordinary token writing `|`?
    fn lt_viable(&mut self, g: GrammarState, depth: usize) -> bool {
        let index = Arc::clone(&self.index);
        let special = index.atomic.iter().any(|&id| {
            std::str::from_utf8(index.bytes(id))
                .ok()
                .and_then(|text| self.grammar.advance(g, text))
                .is_some()
        });
        if special {
            return true;
        }
        match self.allowed(g) {
            AllowedChars::AnyExcept { .. } => true,
            AllowedChars::Only(chars) => {
                if chars.iter().any(|&c| c != '|' && c != '<') {
                    return true;
                }
                depth > 0
                    && chars.contains(&'<')
                    && self
                        .grammar
                        .advance_char(g, '<')
                        .is_some_and(|next| self.lt_viable(next, depth - 1))
            }
        }
    }

    fn allowed(&mut self, g: GrammarState) -> AllowedChars {
        if let Some(a) = self.allowed_chars.get(&g) {
            return a.clone();
        }
        let a = self.grammar.allowed_next_chars(g);
        // Thought states are countless and their answer is cheap: keep only the rest.
        if !g.in_thought() {
            self.allowed_chars.insert(g, a.clone());
        }
        a
    }

    /// Walks every token from `state`, sharing work between tokens with a common
    /// prefix and skipping all tokens under a prefix that fails.
    fn compile(&mut self, state: ConstrainedState) -> TokenMask {
        let index = Arc::clone(&self.index);
        let mut allowed: Vec<u32> = Vec::new();
        for &id in &index.atomic {
            if self.advance(state, id).is_some() {
                allowed.push(id);
            }
        }
        let mut stack: Vec<ConstrainedState> = Vec::with_capacity(32);
        for b in 0..=255u8 {
            let (lo, hi) = (
                index.buckets[usize::from(b)],
                index.buckets[usize::from(b) + 1],
            );
            if lo == hi {
                continue;
            }
            let Some(first) = self.advance_byte(state, b) else {
                continue;
            };
            stack.clear();
            stack.push(state);
            stack.push(first);
            // Length of a failing prefix of the last token walked.
            let mut dead: Option<usize> = None;
            for i in lo..hi {
                let id = index.order[i];
                let bytes = &index.tokens[id as usize].bytes;
                let shared = if i == lo {
                    1
                } else {
                    usize::from(index.lcp[i]).max(1)
                };
                if let Some(d) = dead {
                    if shared >= d {
                        continue;
                    }
                    dead = None;
                }
                stack.truncate(shared + 1);
                let mut ok = true;
                for (j, &byte) in bytes.iter().enumerate().skip(shared) {
                    match self.advance_byte(stack[j], byte) {
                        Some(next) => stack.push(next),
                        None => {
                            dead = Some(j + 1);
                            ok = false;
                            break;
                        }
                    }
                }
                if ok && self.token_end_ok(stack[bytes.len()]) {
                    allowed.push(id);
                }
            }
        }
        allowed.sort_unstable();
        TokenMask::from_sorted(allowed, index.len())
    }
}

/// Length of the UTF-8 sequence a lead byte starts, or `None` for a byte that
/// cannot start one.
fn utf8_len(lead: u8) -> Option<usize> {
    match lead {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

/// Whether `bytes` (lead byte included) can still be, or is, one valid UTF-8 character.
fn utf8_prefix_ok(bytes: &[u8]) -> bool {
    let Some(need) = utf8_len(bytes[0]) else {
        return false;
    };
    if bytes.len() > need {
        return false;
    }
    if let Some(&second) = bytes.get(1) {
        // The second byte's range excludes overlong forms, surrogates and > U+10FFFF.
        let (lo, hi) = match bytes[0] {
            0xE0 => (0xA0, 0xBF),
            0xED => (0x80, 0x9F),
            0xF0 => (0x90, 0xBF),
            0xF4 => (0x80, 0x8F),
            _ => (0x80, 0xBF),
        };
        if !(lo..=hi).contains(&second) {
            return false;
        }
    }
    bytes.iter().skip(2).all(|b| (0x80..=0xBF).contains(b))
}

/// Up to `k` ids with the largest finite-or-+inf logits, in (logit desc, id asc) order.
fn top_candidates(logits: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (i, &v) in logits.iter().enumerate() {
        // NaN and -inf never win the masked argmax either.
        if v.is_nan() || v == f32::NEG_INFINITY {
            continue;
        }
        if best.len() == k && best.last().is_some_and(|&(w, _)| v <= w) {
            continue;
        }
        // Later ids go after equal values: ties keep the lower id first.
        let at = best.partition_point(|&(w, _)| w >= v);
        best.insert(at, (v, i as u32));
        best.truncate(k);
    }
    best.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use lumine_action::{GrammarOptions, KeyVocabulary};

    use super::*;

    fn text(s: &str) -> TokenText {
        TokenText {
            bytes: s.as_bytes().to_vec(),
            kind: TokenKind::Text,
        }
    }

    fn raw(bytes: &[u8]) -> TokenText {
        TokenText {
            bytes: bytes.to_vec(),
            kind: TokenKind::Text,
        }
    }

    fn atomic(s: &str) -> TokenText {
        TokenText {
            bytes: s.as_bytes().to_vec(),
            kind: TokenKind::Atomic,
        }
    }

    /// A small vocabulary: markers, digits, separators, a few names, split UTF-8.
    fn vocab() -> Vec<TokenText> {
        let mut v = vec![
            atomic("<|action_start|>"),
            atomic("<|action_end|>"),
            atomic("<|thought_start|>"),
            atomic("<|thought_end|>"),
            atomic("<|im_end|>"),
        ];
        for s in [
            "0", "1", "2", "9", "-", " ", " ;", ";", " W", " Shift", "W", "Shift", "Sh", "ift",
            " ; W", "<", "|", "<|", "action", "a", "<a", " <",
        ] {
            v.push(text(s));
        }
        // 向 = E5 90 91: split 1+2 and 2+1.
        v.push(raw(&[0xE5]));
        v.push(raw(&[0x90, 0x91]));
        v.push(raw(&[0xE5, 0x90]));
        v.push(raw(&[0x91]));
        v.push(raw(&[0xFF]));
        v.push(raw(&[0x91, 0x91, 0x91]));
        v.push(TokenText {
            bytes: vec![],
            kind: TokenKind::Never,
        });
        v
    }

    fn grammar(allow_thought: bool) -> TokenGrammar {
        let index = Arc::new(VocabIndex::from_tokens(vocab()));
        TokenGrammar::new(
            index,
            Grammar::new(
                &KeyVocabulary::default(),
                GrammarOptions {
                    allow_thought,
                    max_thought_chars: 8,
                },
            ),
        )
    }

    fn id(s: &str) -> u32 {
        idb(s.as_bytes())
    }

    fn idb(bytes: &[u8]) -> u32 {
        vocab().iter().position(|t| t.bytes == bytes).unwrap() as u32
    }

    fn walk(g: &mut TokenGrammar, tokens: &[&str]) -> Option<ConstrainedState> {
        let mut s = g.start();
        for t in tokens {
            s = g.advance(s, id(t))?;
        }
        Some(s)
    }

    fn names(g: &mut TokenGrammar, s: ConstrainedState) -> Vec<String> {
        let v = vocab();
        g.mask(s)
            .ids()
            .iter()
            .map(|&i| String::from_utf8_lossy(&v[i as usize].bytes).into_owned())
            .collect()
    }

    #[test]
    fn mask_agrees_with_advance_everywhere_visited() {
        let mut g = grammar(true);
        let paths: &[&[&str]] = &[
            &[],
            &["<|action_start|>"],
            &["<|action_start|>", "9"],
            &["<|action_start|>", "0", " ", "0", " ", "0"],
            &["<|action_start|>", "0", " ", "0", " ", "0", " ;", " Shift"],
            &["<|action_start|>", "0", " ", "0", " ", "0", " ;", " ", "Sh"],
            &["<|thought_start|>"],
            &["<|thought_start|>", "a", "<"],
        ];
        let mut states: Vec<ConstrainedState> =
            paths.iter().filter_map(|p| walk(&mut g, p)).collect();
        let thought = walk(&mut g, &["<|thought_start|>", "a"]).unwrap();
        states.push(g.advance(thought, idb(&[0xE5])).unwrap());
        states.push(g.advance(thought, idb(&[0xE5, 0x90])).unwrap());
        assert!(states.len() >= paths.len());
        for (path, s) in states.into_iter().enumerate() {
            let mask = g.mask(s);
            for t in 0..vocab().len() as u32 {
                assert_eq!(
                    mask.contains(t),
                    g.advance(s, t).is_some(),
                    "{path:?} token {t}"
                );
            }
        }
    }

    #[test]
    fn markers_only_as_special_tokens() {
        let mut g = grammar(false);
        let start = g.start();
        assert_eq!(names(&mut g, start), ["<|action_start|>"]);
        let s = walk(
            &mut g,
            &[
                "<|action_start|>",
                "0",
                " ",
                "0",
                " ",
                "0",
                " ;",
                " ;",
                " ;",
                " ;",
                " ;",
                " ;",
            ],
        )
        .unwrap();
        let allowed = names(&mut g, s);
        // `<|im_end|>`, spelled-out markers and a bare `<` are not allowed.
        assert!(
            allowed.contains(&"<|action_end|>".to_owned()),
            "{allowed:?}"
        );
        for bad in ["<|im_end|>", "<", "<|", " <"] {
            assert!(!allowed.contains(&bad.to_owned()), "{bad} in {allowed:?}");
        }
        let done = g.advance(s, id("<|action_end|>")).unwrap();
        assert!(g.is_accepting(done));
        assert!(g.mask(done).is_empty());
    }

    #[test]
    fn thought_text_may_hold_lt_and_split_characters() {
        let mut g = grammar(true);
        let s = walk(&mut g, &["<|thought_start|>", "a"]).unwrap();
        let allowed = names(&mut g, s);
        // `<` as text is fine (a `<` then `<|thought_end|>`, or then `a`), `<|` is not.
        assert!(allowed.contains(&"<".to_owned()));
        assert!(!allowed.contains(&"<|".to_owned()));
        assert!(allowed.contains(&"<|thought_end|>".to_owned()));
        let lt = g.advance(s, id("<")).unwrap();
        assert!(g.advance(lt, id("|")).is_none());
        assert!(g.advance(lt, id("<|thought_end|>")).is_some());
        // 向 split two ways; a stray continuation byte or 0xFF never.
        let half = g.advance(s, idb(&[0xE5])).unwrap();
        assert!(half.has_pending_bytes());
        assert!(g.advance(half, id("<|thought_end|>")).is_none());
        let whole = g.advance(half, idb(&[0x90, 0x91]));
        assert!(whole.is_some_and(|w| !w.has_pending_bytes()));
        let two = g.advance(s, idb(&[0xE5, 0x90])).unwrap();
        assert!(
            g.advance(two, idb(&[0x91]))
                .is_some_and(|w| !w.has_pending_bytes())
        );
        assert!(g.advance(s, idb(&[0xFF])).is_none());
        assert!(g.advance(s, idb(&[0x91])).is_none());
        assert!(g.advance(half, idb(&[0x91, 0x91, 0x91])).is_none());
    }

    #[test]
    fn partial_utf8_is_not_allowed_in_the_action() {
        let mut g = grammar(false);
        let s = walk(
            &mut g,
            &["<|action_start|>", "0", " ", "0", " ", "0", " ;", " "],
        )
        .unwrap();
        assert!(g.advance(s, idb(&[0xE5])).is_none());
        let allowed = names(&mut g, s);
        assert!(allowed.contains(&"Shift".to_owned()) && allowed.contains(&"Sh".to_owned()));
        assert!(allowed.contains(&";".to_owned()) && !allowed.contains(&" ;".to_owned()));
    }

    #[test]
    fn greedy_is_the_masked_argmax() {
        let mut g = grammar(true);
        let s = walk(&mut g, &["<|thought_start|>", "a"]).unwrap();
        let n = vocab().len();
        for seed in 0..200u32 {
            let logits: Vec<f32> = (0..n)
                .map(|i| {
                    (((i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 97)
                        as f32
                })
                .collect();
            let lazy = {
                let mut fresh = grammar(true);
                let s2 = walk(&mut fresh, &["<|thought_start|>", "a"]).unwrap();
                fresh.greedy(s2, &logits)
            };
            assert_eq!(lazy, g.mask(s).argmax(&logits));
            let unconstrained = crate::sampler::argmax(&logits);
            if g.advance(s, unconstrained).is_some() {
                assert_eq!(lazy, Some(unconstrained));
            }
        }
    }

    #[test]
    fn utf8_rules() {
        assert!(utf8_prefix_ok(&[0xE4]));
        assert!(utf8_prefix_ok(&[0xE4, 0xB8]));
        assert!(!utf8_prefix_ok(&[0xE0, 0x80]));
        assert!(!utf8_prefix_ok(&[0xED, 0xA0]));
        assert!(!utf8_prefix_ok(&[0xC0]));
        assert!(!utf8_prefix_ok(&[0x80]));
        assert!(utf8_prefix_ok(&[0xF0, 0x9F, 0x98]));
    }

    #[test]
    fn top_candidates_order() {
        let logits = [1.0, 3.0, f32::NAN, 3.0, 2.0, f32::NEG_INFINITY];
        assert_eq!(top_candidates(&logits, 3), vec![1, 3, 4]);
        assert_eq!(top_candidates(&logits, 10), vec![1, 3, 4, 0]);
    }

    #[test]
    fn dense_masks_round_trip() {
        let ids: Vec<u32> = (0..200).filter(|i| i % 3 == 0).collect();
        let mask = TokenMask::from_sorted(ids.clone(), 256);
        assert!(matches!(mask, TokenMask::Dense { .. }));
        assert_eq!(mask.ids(), ids);
        assert_eq!(mask.len(), ids.len());
        let logits: Vec<f32> = (0..256).map(|i| -((i as f32) - 100.0).abs()).collect();
        assert_eq!(mask.argmax(&logits), Some(99));
    }
}
