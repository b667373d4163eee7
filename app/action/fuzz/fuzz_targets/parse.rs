//! Fuzz target `parse`: any bytes, as text, through the parser.
//!
//! Asserts: no panic; a successful parse formats (`format`, `format_model`)
//! into text that parses to the same turn; streaming the text in two or
//! three fragments gives exactly the whole-text result (turn or error,
//! offset included); the grammar accepts only text that parses and formats
//! back to itself. Runs with the default vocabulary and with a small one
//! with shared prefixes and multi-byte names.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use lumine_action::{
    Grammar, GrammarOptions, Key, KeyVocabulary, ParseError, StreamParser, Turn, parse_turn,
};

static VOCABS: LazyLock<Vec<(KeyVocabulary, Grammar)>> = LazyLock::new(|| {
    let custom = KeyVocabulary::new([
        ("W", Key::W),
        ("Wa", Key::A),
        ("Wait", Key::Pause),
        ("跳", Key::Space),
        ("跳跃", Key::Enter),
        ("é", Key::E),
    ])
    .expect("valid custom vocabulary");
    [KeyVocabulary::default(), custom]
        .into_iter()
        .map(|v| {
            let g = Grammar::new(
                &v,
                GrammarOptions {
                    allow_thought: true,
                    max_thought_chars: 64,
                },
            );
            (v, g)
        })
        .collect()
});

/// Cut points derived from the input itself, so seeds stay plain text.
fn cuts(text: &str) -> [usize; 2] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let len = text.len() as u64 + 1;
    let snap = |mut c: usize| {
        while !text.is_char_boundary(c) {
            c -= 1;
        }
        c
    };
    let mut c = [snap((h % len) as usize), snap(((h >> 32) % len) as usize)];
    c.sort_unstable();
    c
}

fn stream(text: &str, vocab: &KeyVocabulary) -> Result<Turn, ParseError> {
    let [a, b] = cuts(text);
    let mut parser = StreamParser::new(vocab);
    let mut events = Vec::new();
    for fragment in [&text[..a], &text[a..b], &text[b..]] {
        parser.push(fragment, &mut events)?;
    }
    parser.finish(&mut events)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (vocab, grammar) in VOCABS.iter() {
        let whole = parse_turn(&text, vocab);
        assert_eq!(stream(&text, vocab), whole, "stream vs whole: {text:?}");
        if let Ok(turn) = &whole {
            let model = turn.format_model(vocab);
            assert_eq!(parse_turn(&model, vocab).as_ref(), Ok(turn), "{model:?}");
            let short = turn.format(vocab);
            assert_eq!(parse_turn(&short, vocab).as_ref(), Ok(turn), "{short:?}");
            assert!(
                grammar.accepts(&model)
                    || turn
                        .thought
                        .as_ref()
                        .is_some_and(|t| t.chars().count() > 64)
            );
        }
        if grammar.accepts(&text) {
            let turn = whole.as_ref().expect("grammar-accepted text parses");
            assert_eq!(
                turn.format_model(vocab),
                *text,
                "grammar accepted non-canonical text"
            );
        }
    }
});
