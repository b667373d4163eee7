//! The constrained, speculative decoder against fake models (no ONNX Runtime):
//! random logits always give a turn that parses; speculation never changes a
//! greedy output; masking leaves a valid greedy output alone; scripted typical
//! actions need at most half a forward pass per token; sampled speculation keeps
//! the output distribution.
//!
//! The vocabulary is the real byte-level BPE tokenizer of `models/test-tiny`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use lumine_action::{Action, Chunk, Grammar, GrammarOptions, Key, KeyVocabulary, Turn, parse_turn};
use lumine_engine::EngineError;
use lumine_engine::bench::ScriptedActions;
use lumine_engine::constrained::{TokenGrammar, VocabIndex};
use lumine_engine::sampler::Sampling;
use lumine_engine::speculative::{
    DecodedTurn, Proposer, TokenModel, TurnContext, TurnOptions, TurnSampler, TurnStats,
    decode_turn,
};
use lumine_engine::tokenizer::Tokenizer;
use proptest::prelude::*;

/// Logit rows of the test model's vocabulary.
const VOCAB: usize = 896;

struct Fixture {
    tokenizer: Tokenizer,
    keys: KeyVocabulary,
    index: Arc<VocabIndex>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test-tiny");
        let tokenizer = Tokenizer::load(&dir.join("tokenizer.json")).unwrap();
        let keys = KeyVocabulary::from_ron(&std::fs::read_to_string(dir.join("keys.ron")).unwrap())
            .unwrap();
        let index = Arc::new(VocabIndex::from_tokenizer(&tokenizer, VOCAB));
        Fixture {
            tokenizer,
            keys,
            index,
        }
    })
}

fn grammar(allow_thought: bool, max_thought_chars: usize) -> TokenGrammar {
    let f = fixture();
    TokenGrammar::new(
        Arc::clone(&f.index),
        Grammar::new(
            &f.keys,
            GrammarOptions {
                allow_thought,
                max_thought_chars,
            },
        ),
    )
}

fn mix(mut h: u64) -> u64 {
    // splitmix64 finaliser.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Where a fake model's logits come from, given the tokens fed so far.
trait Logits {
    fn row(&self, context: &[u32]) -> Vec<f32>;
}

/// A model that remembers what it was fed and answers with `L`'s rows.
struct Fake<L: Logits> {
    logits: L,
    context: Vec<u32>,
    passes: usize,
}

impl<L: Logits> Fake<L> {
    fn new(logits: L) -> Self {
        Self {
            logits,
            context: Vec::new(),
            passes: 0,
        }
    }

    fn first(&self) -> Vec<f32> {
        self.logits.row(&self.context)
    }
}

impl<L: Logits> TokenModel for Fake<L> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        self.passes += 1;
        let mut out = Vec::with_capacity(tokens.len() * VOCAB);
        for &t in tokens {
            self.context.push(t);
            out.extend(self.logits.row(&self.context));
        }
        Ok(out)
    }

    fn rollback(&mut self, n: usize) -> Result<(), EngineError> {
        assert!(n <= self.context.len());
        self.context.truncate(self.context.len() - n);
        Ok(())
    }
}

/// Uniform noise in [-4, 4), a deterministic function of (seed, context).
struct Random(u64);

impl Logits for Random {
    fn row(&self, context: &[u32]) -> Vec<f32> {
        let h = context
            .iter()
            .fold(mix(self.0), |h, &t| mix(h ^ u64::from(t)));
        (0..VOCAB as u64)
            .map(|i| {
                (mix(h ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 40) as f32 / (1u64 << 24) as f32
                    * 8.0
                    - 4.0
            })
            .collect()
    }
}

/// Random noise, except that while the context follows the script the script's
/// next token has the largest logit: the model's *unconstrained* greedy output is
/// the script.
struct Scripted {
    script: Vec<u32>,
    noise: Random,
}

impl Logits for Scripted {
    fn row(&self, context: &[u32]) -> Vec<f32> {
        let mut row = self.noise.row(context);
        if context.len() < self.script.len() && self.script[..context.len()] == *context {
            row[self.script[context.len()] as usize] = 10.0;
        }
        row
    }
}

/// The same row at every position.
struct Fixed(Vec<f32>);

impl Logits for Fixed {
    fn row(&self, _: &[u32]) -> Vec<f32> {
        self.0.clone()
    }
}

fn decode<L: Logits>(
    model: &mut Fake<L>,
    g: &mut TokenGrammar,
    options: &TurnOptions,
    sampler: &mut TurnSampler,
    previous_group: &[&str],
) -> DecodedTurn {
    let f = fixture();
    let proposer = Proposer::new(&f.tokenizer, &f.keys);
    let first = model.first();
    let context = TurnContext {
        previous_group: previous_group.iter().map(|s| (*s).to_owned()).collect(),
    };
    decode_turn(
        model,
        g,
        Some(&proposer),
        &context,
        &first,
        options,
        sampler,
        &mut |_| {},
    )
    .unwrap()
}

fn options(max_draft_tokens: usize, sampling: Sampling) -> TurnOptions {
    TurnOptions {
        sampling,
        max_draft_tokens,
        max_tokens: 1024,
        teacher: None,
    }
}

fn check_parses(g: &TokenGrammar, turn: &DecodedTurn) {
    let f = fixture();
    let parsed = parse_turn(&turn.text, &f.keys).unwrap_or_else(|e| panic!("{:?}: {e}", turn.text));
    assert_eq!(parsed, turn.turn);
    assert!(g.grammar().accepts(&turn.text), "{:?}", turn.text);
    assert_eq!(turn.tokens.len(), turn.stats.tokens);
}

fn sampling_strategy() -> impl Strategy<Value = Sampling> {
    prop_oneof![
        Just(Sampling::Greedy),
        (0.3f32..2.0, 0.5f32..=1.0, any::<u64>()).prop_map(|(temperature, top_p, seed)| {
            Sampling::TopP {
                temperature,
                top_p,
                seed,
            }
        }),
    ]
}

proptest! {
    // No failure files: the seeds are in the test output when a case fails.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the logits, the constrained decoder finishes a turn that parses.
    #[test]
    fn random_logits_always_give_a_valid_turn(
        seed in any::<u64>(),
        thought in any::<bool>(),
        max_thought in 0usize..40,
        drafts in prop_oneof![Just(0usize), 1usize..20],
        sampling in sampling_strategy(),
    ) {
        let mut g = grammar(thought, max_thought);
        let mut model = Fake::new(Random(seed));
        let turn = decode(&mut model, &mut g, &options(drafts, sampling), &mut TurnSampler::new(sampling), &["W"]);
        check_parses(&g, &turn);
        prop_assert!(thought || turn.turn.thought.is_none());
        // The model holds the fed tokens: all but the last one.
        prop_assert_eq!(model.context.len(), turn.fed);
        prop_assert_eq!(&model.context[..], &turn.tokens[..turn.fed]);
    }

    /// Greedy speculation is token for token plain constrained greedy decoding.
    #[test]
    fn speculation_never_changes_a_greedy_output(seed in any::<u64>(), thought in any::<bool>(), drafts in 1usize..24) {
        let mut g = grammar(thought, 24);
        let plain = decode(&mut Fake::new(Random(seed)), &mut g, &options(0, Sampling::Greedy), &mut TurnSampler::new(Sampling::Greedy), &["Shift", "W"]);
        let mut model = Fake::new(Random(seed));
        let spec = decode(&mut model, &mut g, &options(drafts, Sampling::Greedy), &mut TurnSampler::new(Sampling::Greedy), &["Shift", "W"]);
        prop_assert_eq!(&plain.tokens, &spec.tokens);
        prop_assert_eq!(plain.stats.passes + 1, plain.tokens.len());
        prop_assert!(spec.stats.passes <= plain.stats.passes);
    }

    /// A model whose unconstrained greedy output is a valid action keeps it under
    /// the mask, with or without speculation: every token of the canonical
    /// tokenization is allowed where it occurs.
    #[test]
    fn masking_leaves_a_valid_greedy_output_unchanged(action in action_strategy(), thought in proptest::option::of("[a-z]{1,6}( [a-z]{1,6}){0,2}"), seed in any::<u64>()) {
        let f = fixture();
        let turn = Turn::new(thought, action).unwrap();
        let text = turn.format_model(&f.keys);
        let script = f.tokenizer.encode(&text).unwrap();
        for drafts in [0, 16] {
            let mut g = grammar(true, 64);
            let mut model = Fake::new(Scripted { script: script.clone(), noise: Random(seed) });
            let out = decode(&mut model, &mut g, &options(drafts, Sampling::Greedy), &mut TurnSampler::new(Sampling::Greedy), &[]);
            prop_assert_eq!(&out.tokens, &script, "{}", text);
            prop_assert_eq!(&out.turn, &turn);
        }
    }
}

/// Random noise, but the thought marker and the letter `a` are far ahead: a
/// model that would open a thought and write it until the budget is gone.
/// Once the thought is closed it answers a short action (random key names
/// can make an action longer than any fixed reserve).
struct Rambling(Random);

impl Logits for Rambling {
    fn row(&self, context: &[u32]) -> Vec<f32> {
        let f = fixture();
        let mut row = self.0.row(context);
        let start = f.index.atomic_id("<|thought_start|>").unwrap();
        let end = f.index.atomic_id("<|thought_end|>").unwrap();
        let a = f.tokenizer.encode("a").unwrap()[0];
        row[start as usize] = 30.0;
        row[a as usize] = 20.0;
        if let Some(at) = context.iter().position(|&t| t == end) {
            let action = f
                .tokenizer
                .encode("<|action_start|>0 0 0 ; W ; W ; W ; W ; W ; W<|action_end|>")
                .unwrap();
            let done = &context[at + 1..];
            if done.len() < action.len() && action[..done.len()] == *done {
                row[action[done.len()] as usize] = 60.0;
            }
        }
        row
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// A thought that would outgrow the turn's token budget is closed in time
    /// for the action: the turn still finishes within `max_tokens`, thought
    /// and action valid, however long the grammar lets thoughts be.
    #[test]
    fn a_long_thought_leaves_room_for_the_action(
        seed in any::<u64>(),
        max_tokens in 80usize..200,
        drafts in prop_oneof![Just(0usize), 1usize..20],
        sampling in sampling_strategy(),
    ) {
        let mut g = grammar(true, 4096);
        let mut model = Fake::new(Rambling(Random(seed)));
        let options = TurnOptions { max_tokens, ..options(drafts, sampling) };
        let turn = decode(&mut model, &mut g, &options, &mut TurnSampler::new(sampling), &["W"]);
        check_parses(&g, &turn);
        prop_assert!(turn.tokens.len() <= max_tokens);
        let thought = turn.turn.thought.clone().unwrap_or_default();
        prop_assert!(thought.len() >= max_tokens - lumine_engine::speculative::ACTION_RESERVE_TOKENS - 1, "{:?}", turn.text);
    }
}

fn action_strategy() -> impl Strategy<Value = Action> {
    let key = proptest::sample::select(
        Key::ALL
            .iter()
            .copied()
            .filter(|k| KeyVocabulary::default().contains_key(*k))
            .collect::<Vec<_>>(),
    );
    let chunk = proptest::collection::vec(key, 0..=4).prop_map(|keys| {
        let mut c = Chunk::EMPTY;
        for k in keys {
            let _ = c.push(k);
        }
        c
    });
    (
        -999i32..=999,
        -999i32..=999,
        -5i32..=5,
        proptest::array::uniform6(chunk),
    )
        .prop_map(|(dx, dy, dz, chunks)| Action::new(dx, dy, dz, chunks).unwrap())
}

#[test]
fn scripted_typical_actions_need_at_most_half_a_pass_per_token() {
    let f = fixture();
    let mut script = ScriptedActions::new(1);
    let mut g = grammar(false, 0);
    let mut total = TurnStats::default();
    let mut previous: Vec<String> = Vec::new();
    for step in 0..200 {
        let action = script.next_action();
        let text = Turn::from(action).format_model(&f.keys);
        let tokens = f.tokenizer.encode(&text).unwrap();
        let mut model = Fake::new(Scripted {
            script: tokens.clone(),
            noise: Random(step),
        });
        let prev: Vec<&str> = previous.iter().map(String::as_str).collect();
        let out = decode(
            &mut model,
            &mut g,
            &options(16, Sampling::Greedy),
            &mut TurnSampler::new(Sampling::Greedy),
            &prev,
        );
        assert_eq!(out.tokens, tokens);
        assert_eq!(model.passes, out.stats.passes);
        total.add(&out.stats);
        previous = action.chunks[5]
            .iter()
            .map(|k| f.keys.name(k).unwrap().to_owned())
            .collect();
    }
    eprintln!(
        "scripted: {:.1} tokens and {:.1} passes per action ({:.3} per token), acceptance {:.2}",
        total.tokens as f64 / 200.0,
        total.passes as f64 / 200.0,
        total.passes_per_token(),
        total.acceptance_rate()
    );
    assert!(total.passes * 2 <= total.tokens, "{total:?}");
}

/// Marginals of a sampled turn that speculation touches: keys in chunk 0, whether
/// chunk 1 repeats chunk 0, keys in chunk 5, the scroll value.
fn marginals(turns: &[Turn]) -> [HashMap<i64, f64>; 4] {
    let mut out: [HashMap<i64, f64>; 4] = Default::default();
    let n = turns.len() as f64;
    for t in turns {
        let a = &t.action;
        let values = [
            a.chunks[0].len() as i64,
            i64::from(a.chunks[1] == a.chunks[0]),
            a.chunks[5].len() as i64,
            i64::from(a.dz),
        ];
        for (m, v) in out.iter_mut().zip(values) {
            *m.entry(v).or_default() += 1.0 / n;
        }
    }
    out
}

fn total_variation(a: &HashMap<i64, f64>, b: &HashMap<i64, f64>) -> f64 {
    let keys: std::collections::BTreeSet<i64> = a.keys().chain(b.keys()).copied().collect();
    keys.iter()
        .map(|k| (a.get(k).unwrap_or(&0.0) - b.get(k).unwrap_or(&0.0)).abs())
        .sum::<f64>()
        / 2.0
}

#[test]
fn sampled_speculation_keeps_the_distribution() {
    let f = fixture();
    let id = |s: &str| f.tokenizer.token_to_id(s).unwrap_or_else(|| panic!("{s}"));
    // Holds are likely but not certain, so drafts are both accepted and rejected.
    let mut row = vec![-6.0f32; VOCAB];
    for (token, logit) in [
        ("Ġ;", 2.0),
        ("ĠW", 1.6),
        ("ĠShift", 1.0),
        ("ĠA", 0.6),
        ("0", 2.5),
        ("1", 1.0),
        ("Ġ", 1.0),
        ("-", 0.5),
        ("<|action_end|>", 1.5),
        ("<|action_start|>", 0.0),
    ] {
        row[id(token) as usize] = logit;
    }
    let n = 1500;
    let run = |drafts: usize, seed: u64| -> Vec<Turn> {
        let mut g = grammar(false, 0);
        let sampling = Sampling::TopP {
            temperature: 1.0,
            top_p: 1.0,
            seed,
        };
        let mut sampler = TurnSampler::new(sampling);
        (0..n)
            .map(|_| {
                let mut model = Fake::new(Fixed(row.clone()));
                decode(
                    &mut model,
                    &mut g,
                    &options(drafts, sampling),
                    &mut sampler,
                    &["W"],
                )
                .turn
            })
            .collect()
    };
    let plain = marginals(&run(0, 1));
    let plain_again = marginals(&run(0, 2));
    let spec = marginals(&run(16, 3));
    for (i, ((p, q), s)) in plain.iter().zip(&plain_again).zip(&spec).enumerate() {
        let noise = total_variation(p, q);
        let tv = total_variation(p, s);
        eprintln!("marginal {i}: plain vs plain {noise:.3}, plain vs speculative {tv:.3}");
        assert!(tv < 0.06, "marginal {i}: {p:?} vs {s:?}");
    }
    // Sanity: the marginal that drafts target is far from trivial.
    assert!(
        plain[1].get(&1).copied().unwrap_or(0.0) > 0.05
            && plain[1].get(&0).copied().unwrap_or(0.0) > 0.05
    );
}

#[test]
fn forced_tokens_cost_no_choice() {
    // After the scroll number ` ;` is the only way on with this tokenizer only if the
    // vocabulary has no ` ` + `;` split; either way the mask decides, not the logits.
    let mut g = grammar(false, 0);
    let f = fixture();
    let mut s = g.start();
    let start_mask = g.mask(s);
    assert_eq!(
        start_mask.ids(),
        vec![f.tokenizer.token_to_id("<|action_start|>").unwrap()]
    );
    for t in f
        .tokenizer
        .encode("<|action_start|>0 0 0 ; ; ; ; ; ;")
        .unwrap()
    {
        s = g.advance(s, t).unwrap();
    }
    let end = g.mask(s);
    assert!(end.contains(f.tokenizer.token_to_id("<|action_end|>").unwrap()));
    assert!(!end.contains(f.tokenizer.token_to_id("<|im_end|>").unwrap()));
}
