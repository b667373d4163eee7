//! Property tests: round trips, streaming equivalence, hold invariants, the
//! even split and the grammar.

use std::collections::BTreeSet;

use lumine_action::{
    Action, AllowedChars, Chunk, Grammar, GrammarOptions, HeldKeys, Key, KeyVocabulary, ParseError,
    StreamEvent, StreamParser, Turn, parse_turn, split_even,
};
use proptest::prelude::*;

fn vocab() -> KeyVocabulary {
    KeyVocabulary::default()
}

fn vocab_keys() -> Vec<Key> {
    vocab().entries().map(|(_, k)| k).collect()
}

fn chunk_strategy() -> impl Strategy<Value = Chunk> {
    prop::sample::subsequence(vocab_keys(), 0..=4)
        .prop_shuffle()
        .prop_map(|keys| Chunk::new(&keys).unwrap())
}

fn action_strategy() -> impl Strategy<Value = Action> {
    (
        -999i32..=999,
        -999i32..=999,
        -5i32..=5,
        prop::array::uniform6(chunk_strategy()),
    )
        .prop_map(|(dx, dy, dz, chunks)| Action::new(dx, dy, dz, chunks).unwrap())
}

/// A thought a `Turn` can carry: no `<|`, trimmed.
fn thought_strategy() -> impl Strategy<Value = String> {
    "[a-z A-Z0-9<|>;\\n\\t前方敌人走，。éß\u{3000}-]{0,24}".prop_map(|s| {
        let mut s = s;
        while s.contains("<|") {
            s = s.replace("<|", "<");
        }
        s.trim_ascii().to_owned()
    })
}

fn turn_strategy() -> impl Strategy<Value = Turn> {
    (prop::option::of(thought_strategy()), action_strategy())
        .prop_map(|(thought, action)| Turn::new(thought, action).unwrap())
}

/// Draws small choices from a random byte string, cycling.
struct Noise<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Noise<'_> {
    fn next(&mut self) -> u8 {
        let b = self
            .bytes
            .get(self.at % self.bytes.len().max(1))
            .copied()
            .unwrap_or(0);
        self.at += 1;
        b.wrapping_add((self.at / self.bytes.len().max(1)) as u8)
    }

    fn pick<'s>(&mut self, options: &[&'s str]) -> &'s str {
        options[usize::from(self.next()) % options.len()]
    }

    /// Zero or more whitespace of any kind.
    fn ws(&mut self) -> String {
        let n = self.next() % 4;
        (0..n)
            .map(|_| self.pick(&[" ", "\t", "\n", "\r\n", "  "]))
            .collect()
    }

    /// One or more spaces or tabs.
    fn blank1(&mut self) -> String {
        let mut s = self.pick(&[" ", "\t", "  "]).to_owned();
        s.push_str(&(0..self.next() % 2).map(|_| " ").collect::<String>());
        s
    }

    /// One or more whitespace of any kind.
    fn ws1(&mut self) -> String {
        let mut s = self.pick(&[" ", "\t", "\n", "\r\n"]).to_owned();
        s.push_str(&self.ws());
        s
    }
}

/// `turn` written with random (valid) whitespace, markers optional when
/// there is no thought.
fn render_loosely(turn: &Turn, vocab: &KeyVocabulary, noise: &mut Noise<'_>) -> String {
    let a = &turn.action;
    let marked = turn.thought.is_some() || noise.next().is_multiple_of(2);
    let mut s = noise.ws();
    if let Some(t) = &turn.thought {
        s += "<|thought_start|>";
        s += &noise.ws();
        s += t;
        s += &noise.ws();
        s += "<|thought_end|>";
        s += &noise.ws();
    }
    if marked {
        s += "<|action_start|>";
        s += &noise.ws();
    }
    s += &format!(
        "{}{}{}{}{}",
        a.dx,
        noise.blank1(),
        a.dy,
        noise.blank1(),
        a.dz
    );
    for chunk in &a.chunks {
        s += &noise.ws();
        s += ";";
        for (i, key) in chunk.iter().enumerate() {
            s += &if i == 0 { noise.ws() } else { noise.ws1() };
            s += vocab.name(key).unwrap();
        }
    }
    if marked {
        s += &noise.ws();
        s += "<|action_end|>";
    }
    s += &noise.ws();
    s
}

/// Applies a few random edits to `s`.
fn mutate(s: &str, noise: &mut Noise<'_>) -> String {
    const ALPHABET: [char; 22] = [
        ' ', ';', '<', '|', '>', '-', '+', '0', '1', '9', 'W', 'S', 'h', 'x', 'a', 't', '_', '\n',
        '\t', '跳', 'é', '\u{0}',
    ];
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..=noise.next() % 3 {
        let at = if chars.is_empty() {
            0
        } else {
            usize::from(noise.next()) * 7 % (chars.len() + 1)
        };
        let c = ALPHABET[usize::from(noise.next()) % ALPHABET.len()];
        match noise.next() % 6 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 => chars.insert(at, c),
            2 if at < chars.len() => chars[at] = c,
            3 => chars.truncate(at),
            4 if at + 1 < chars.len() => chars.swap(at, at + 1),
            _ => {
                let end = (at + usize::from(noise.next() % 8)).min(chars.len());
                let copy: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, copy);
            }
        }
    }
    chars.into_iter().collect()
}

/// Streams `text` cut at `cuts` (snapped to character boundaries).
fn stream(
    text: &str,
    cuts: &[usize],
    vocab: &KeyVocabulary,
) -> (Result<Turn, ParseError>, Vec<StreamEvent>) {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| {
            let mut c = c % (text.len() + 1);
            while !text.is_char_boundary(c) {
                c -= 1;
            }
            c
        })
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    let mut parser = StreamParser::new(vocab);
    let mut events = Vec::new();
    for w in points.windows(2) {
        if let Err(e) = parser.push(&text[w[0]..w[1]], &mut events) {
            // Later calls keep failing the same way.
            assert_eq!(parser.finish(&mut events), Err(e.clone()));
            return (Err(e), events);
        }
    }
    (parser.finish(&mut events), events)
}

/// The events of a successful stream describe the turn.
fn check_events(turn: &Turn, events: &[StreamEvent]) {
    let mut expected = Vec::new();
    if let Some(t) = &turn.thought {
        expected.push(StreamEvent::Thought(t.clone()));
    }
    let a = &turn.action;
    expected.push(StreamEvent::Mouse {
        dx: a.dx,
        dy: a.dy,
        dz: a.dz,
    });
    for (index, chunk) in a.chunks.iter().enumerate() {
        expected.push(StreamEvent::Chunk {
            index,
            chunk: *chunk,
        });
    }
    expected.push(StreamEvent::End(turn.clone()));
    assert_eq!(events, expected.as_slice());
}

/// 512 cases unless `PROPTEST_CASES` says otherwise (e.g. a long local run).
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 512;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn format_then_parse_is_identity(turn in turn_strategy()) {
        let v = vocab();
        prop_assert_eq!(parse_turn(&turn.format(&v), &v), Ok(turn.clone()));
        prop_assert_eq!(parse_turn(&turn.format_model(&v), &v), Ok(turn.clone()));
        let a = turn.action;
        prop_assert_eq!(lumine_action::parse_action(&a.format(&v), &v), Ok(a));
    }

    #[test]
    fn loose_text_parses_and_formats_to_a_fixed_point(
        turn in turn_strategy(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let v = vocab();
        let text = render_loosely(&turn, &v, &mut Noise { bytes: &noise, at: 0 });
        let parsed = parse_turn(&text, &v);
        prop_assert_eq!(parsed.as_ref(), Ok(&turn), "{:?}", text);
        let canonical = turn.format(&v);
        let again = parse_turn(&canonical, &v).unwrap();
        prop_assert_eq!(again.format(&v), canonical);
    }

    #[test]
    fn parse_format_parse_is_a_fixed_point_on_mutated_text(
        turn in turn_strategy(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let v = vocab();
        let mut n = Noise { bytes: &noise, at: 0 };
        let text = mutate(&render_loosely(&turn, &v, &mut n), &mut n);
        if let Ok(parsed) = parse_turn(&text, &v) {
            let canonical = parsed.format(&v);
            let again = parse_turn(&canonical, &v);
            prop_assert_eq!(again.as_ref(), Ok(&parsed));
            prop_assert_eq!(again.unwrap().format(&v), canonical);
        }
    }

    #[test]
    fn streaming_any_fragmentation_equals_whole_parse(
        turn in turn_strategy(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        mutated in any::<bool>(),
    ) {
        let v = vocab();
        let mut n = Noise { bytes: &noise, at: 0 };
        let mut text = render_loosely(&turn, &v, &mut n);
        if mutated {
            text = mutate(&text, &mut n);
        }
        let whole = parse_turn(&text, &v);
        let (streamed, events) = stream(&text, &cuts, &v);
        prop_assert_eq!(&streamed, &whole, "{:?}", text);
        if let Ok(turn) = &whole {
            check_events(turn, &events);
        }
    }

    #[test]
    fn streaming_arbitrary_text_equals_whole_parse(
        text in "[0-9 ;<|>a-zA-Z_\\-+\\n跳]{0,60}",
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let v = vocab();
        prop_assert_eq!(stream(&text, &cuts, &v).0, parse_turn(&text, &v));
    }

    #[test]
    fn held_keys_always_equal_the_current_chunk(
        chunks in prop::collection::vec(chunk_strategy(), 1..40),
    ) {
        let mut held = HeldKeys::new();
        let mut down: BTreeSet<Key> = BTreeSet::new();
        for chunk in &chunks {
            let t = held.advance(chunk);
            for k in &t.release {
                prop_assert!(down.remove(&k), "released {k} that was not down");
            }
            for k in &t.press {
                prop_assert!(down.insert(k), "pressed {k} that was already down");
            }
            let want: BTreeSet<Key> = chunk.iter().collect();
            prop_assert_eq!(&down, &want);
            prop_assert_eq!(held.held(), chunk);
        }
        for k in &held.release_all().release {
            prop_assert!(down.remove(&k));
        }
        prop_assert!(down.is_empty());
    }

    #[test]
    fn action_transitions_continue_across_steps(
        actions in prop::collection::vec(action_strategy(), 1..6),
    ) {
        let mut prev = Chunk::EMPTY;
        let mut down: BTreeSet<Key> = BTreeSet::new();
        for a in &actions {
            for (t, chunk) in a.transitions(&prev).iter().zip(&a.chunks) {
                for k in &t.release {
                    prop_assert!(down.remove(&k));
                }
                for k in &t.press {
                    prop_assert!(down.insert(k));
                }
                prop_assert_eq!(&down, &chunk.iter().collect::<BTreeSet<Key>>());
            }
            prev = a.chunks[5];
        }
    }

    #[test]
    fn split_is_exact_even_and_symmetric(total in any::<i32>(), parts in 1usize..50) {
        let s: Vec<i32> = split_even(total, parts).collect();
        prop_assert_eq!(s.len(), parts);
        prop_assert_eq!(s.iter().map(|&p| i64::from(p)).sum::<i64>(), i64::from(total));
        let max = s.iter().max().unwrap();
        let min = s.iter().min().unwrap();
        prop_assert!(i64::from(*max) - i64::from(*min) <= 1);
        if total != i32::MIN {
            let neg: Vec<i32> = split_even(-total, parts).collect();
            prop_assert_eq!(neg, s.iter().map(|p| -p).collect::<Vec<_>>());
        }
    }

    #[test]
    fn mouse_split_sums(a in action_strategy()) {
        let m = a.mouse_per_chunk();
        prop_assert_eq!(m.iter().map(|p| p.0).sum::<i32>(), a.dx);
        prop_assert_eq!(m.iter().map(|p| p.1).sum::<i32>(), a.dy);
        prop_assert_eq!(a.scroll_per_chunk().iter().sum::<i32>(), a.dz);
    }

    #[test]
    fn grammar_accepts_formatted_turns(turn in turn_strategy()) {
        let v = vocab();
        let g = Grammar::new(&v, GrammarOptions { allow_thought: true, max_thought_chars: 64 });
        prop_assert!(g.accepts_turn(&turn), "{}", turn.format_model(&v));
        let strict = Grammar::new(&v, GrammarOptions { allow_thought: false, max_thought_chars: 0 });
        prop_assert_eq!(strict.accepts_turn(&turn), turn.thought.is_none());
    }

    #[test]
    fn grammar_walks_end_in_parseable_round_tripping_turns(
        choices in prop::collection::vec(any::<u32>(), 1..128),
        allow_thought in any::<bool>(),
        max_thought_chars in 0usize..12,
    ) {
        let v = vocab();
        let g = Grammar::new(&v, GrammarOptions { allow_thought, max_thought_chars });
        let text = walk(&g, &choices);
        let turn = parse_turn(&text, &v);
        prop_assert!(turn.is_ok(), "{:?}: {:?}", text, turn);
        prop_assert_eq!(turn.unwrap().format_model(&v), text.as_str());
        prop_assert!(g.accepts(&text));
    }

    #[test]
    fn grammar_rejects_what_does_not_round_trip(
        turn in turn_strategy(),
        noise in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        // Any text the grammar accepts formats back to itself.
        let v = vocab();
        let g = Grammar::new(&v, GrammarOptions::default());
        let mut n = Noise { bytes: &noise, at: 0 };
        let text = mutate(&turn.format_model(&v), &mut n);
        if g.accepts(&text) {
            let parsed = parse_turn(&text, &v).unwrap();
            prop_assert_eq!(parsed.format_model(&v), text);
        }
    }
}

/// Characters tried where the grammar allows free text.
const THOUGHT_SAMPLE: [char; 10] = ['a', ' ', '<', '|', '跳', '\n', 'Z', ';', '>', '。'];

/// Walks the grammar from the start: take the forced text, then a random
/// allowed character, until accepted. Also checks that `allowed_next_chars`
/// agrees with `advance_char`.
fn walk(g: &Grammar, choices: &[u32]) -> String {
    let mut state = g.start();
    let mut text = String::new();
    for i in 0..10_000usize {
        let forced = g.forced(state);
        state = g.advance(state, &forced).expect("forced text is allowed");
        text.push_str(&forced);
        if g.is_accepting(state) {
            return text;
        }
        let allowed = g.allowed_next_chars(state);
        let options: Vec<char> = match &allowed {
            AllowedChars::Only(chars) => chars.clone(),
            AllowedChars::AnyExcept { .. } => THOUGHT_SAMPLE
                .iter()
                .copied()
                .filter(|&c| allowed.contains(c))
                .collect(),
        };
        for c in THOUGHT_SAMPLE
            .iter()
            .copied()
            .chain(options.iter().copied())
        {
            assert_eq!(
                allowed.contains(c),
                g.advance_char(state, c).is_some(),
                "{c:?} after {text:?}"
            );
        }
        assert!(!options.is_empty(), "dead state after {text:?}");
        let pick = choices[i % choices.len()].wrapping_add(i as u32) as usize;
        let c = options[pick % options.len()];
        state = g.advance_char(state, c).expect("allowed char advances");
        text.push(c);
    }
    panic!("walk did not finish: {text:?}");
}
