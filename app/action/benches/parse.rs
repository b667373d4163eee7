//! Parse throughput of typical actions: whole text, and streamed token by
//! token the way a decoder delivers them.
//!
//! Run: `cargo bench -p lumine-action --bench parse` (add `-- --quick` for a
//! short run).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumine_action::{KeyVocabulary, StreamParser, Turn, parse_turn};

/// Typical model outputs: holds, taps, mouse look, an idle step, a thought.
const TURNS: [&str; 6] = [
    "<|action_start|>92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F<|action_end|>",
    "<|action_start|>0 0 0 ; W ; W ; W ; W ; W ; W<|action_end|>",
    "<|action_start|>-35 12 0 ; W LB ; W LB ; W ; W ; W Space ; W<|action_end|>",
    "<|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>",
    "<|action_start|>-412 -87 -2 ; Ctrl one ; Ctrl ; ; Esc ; ; Tab<|action_end|>",
    "<|thought_start|>前方有敌人，先后退再用技能攻击<|thought_end|><|action_start|>120 -4 0 ; S ; S ; S E ; E ; ; Q<|action_end|>",
];

/// Splits like the Qwen2 tokenizer does (SPEC.md 5.3): markers whole, digits
/// one by one, ` ;` and ` Name` as single tokens, thought text per character.
fn tokenize(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let len = if rest.starts_with("<|") {
            rest.find("|>").map_or(rest.len(), |i| i + 2)
        } else if let Some(after) = rest.strip_prefix(' ') {
            1 + after.find([' ', '<']).unwrap_or(after.len())
        } else {
            rest.chars().next().map_or(1, char::len_utf8)
        };
        let (token, tail) = rest.split_at(len);
        tokens.push(token);
        rest = tail;
    }
    tokens
}

fn bench_parse(c: &mut Criterion) {
    let vocab = KeyVocabulary::default();
    let bytes: usize = TURNS.iter().map(|t| t.len()).sum();
    let tokenized: Vec<Vec<&str>> = TURNS.iter().map(|t| tokenize(t)).collect();
    for turn in TURNS {
        assert!(parse_turn(turn, &vocab).is_ok(), "{turn}");
    }

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("whole_text_bytes", |b| {
        b.iter(|| {
            for turn in TURNS {
                let _ = black_box(parse_turn(black_box(turn), &vocab));
            }
        });
    });
    group.bench_function("stream_tokens_bytes", |b| {
        let mut events = Vec::with_capacity(16);
        b.iter(|| {
            for tokens in &tokenized {
                let mut parser = StreamParser::new(&vocab);
                for token in tokens {
                    let _ = parser.push(black_box(token), &mut events);
                }
                let _ = black_box(parser.finish(&mut events));
                events.clear();
            }
        });
    });
    group.throughput(Throughput::Elements(TURNS.len() as u64));
    group.bench_function("whole_text_actions", |b| {
        b.iter(|| {
            for turn in TURNS {
                let _ = black_box(parse_turn(black_box(turn), &vocab));
            }
        });
    });
    group.finish();

    let parsed: Vec<Turn> = TURNS
        .iter()
        .filter_map(|t| parse_turn(t, &vocab).ok())
        .collect();
    let mut group = c.benchmark_group("format");
    group.throughput(Throughput::Elements(parsed.len() as u64));
    group.bench_function("format_model", |b| {
        let mut out = String::with_capacity(256);
        b.iter(|| {
            for turn in &parsed {
                out.clear();
                turn.write_model_to(&vocab, &mut out);
                black_box(&out);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
