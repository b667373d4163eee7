//! The rendered messages have exactly the layout of the engine's golden
//! conversation `models/test-tiny/golden/b.messages.json` (made by
//! transformers' chat template from the same structure).

use lumine_context::{Context, ContextConfig, Part, Role};
use serde_json::{Value, json};

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test-tiny/golden/b.messages.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The OpenAI-style JSON the golden file uses: plain strings for system and
/// assistant, part lists for users.
fn to_json(ctx: &Context<String>) -> Value {
    let messages: Vec<Value> = ctx
        .messages()
        .into_iter()
        .map(|m| {
            let content = match m.role {
                Role::User => Value::Array(
                    m.parts
                        .into_iter()
                        .map(|p| match p {
                            Part::Text(text) => json!({"type": "text", "text": text}),
                            Part::Frame(path) => json!({"type": "image", "path": path}),
                        })
                        .collect(),
                ),
                Role::System | Role::Assistant => {
                    let text: String = m
                        .parts
                        .into_iter()
                        .map(|p| match p {
                            Part::Text(t) => t,
                            Part::Frame(_) => panic!("frame outside a user message"),
                        })
                        .collect();
                    Value::String(text)
                }
            };
            json!({"role": m.role.as_str(), "content": content})
        })
        .collect();
    Value::Array(messages)
}

#[test]
fn renders_the_golden_layout() {
    let golden = golden();
    let system = golden[0]["content"].as_str().unwrap().to_owned();
    let mut ctx = Context::new(ContextConfig {
        system_prompt: system,
        history_frames: 10,
        token_budget: None,
        frame_tokens: lumine_context::frame_tokens(1280, 720),
    });
    ctx.set_instruction(Some("Follow the road to the next village. ".to_owned()));
    ctx.push_frame(0, "frame_b1.png".to_owned(), None);
    ctx.record_answer(
        0,
        None,
        "<|action_start|>12 -3 0 ; W ; W ; Shift W ; Shift W ; Shift W ; W<|action_end|>"
            .to_owned(),
    )
    .unwrap();
    ctx.push_frame(
        1,
        "frame_b2.png".to_owned(),
        Some("前方有敌人，先躲到石头后面。".to_owned()),
    );
    assert_eq!(to_json(&ctx), golden);
}

#[test]
fn thought_goes_in_front_of_its_action() {
    let mut ctx = Context::new(ContextConfig {
        system_prompt: "S".to_owned(),
        history_frames: 10,
        token_budget: None,
        frame_tokens: 4,
    });
    ctx.push_frame(7, "a".to_owned(), None);
    let answer =
        "<|thought_start|>hide<|thought_end|><|action_start|>0 0 0 ; ; ; ; ; ;<|action_end|>";
    ctx.record_answer(7, Some("hide".to_owned()), answer.to_owned())
        .unwrap();
    ctx.push_frame(8, "b".to_owned(), None);
    assert_eq!(
        to_json(&ctx),
        json!([
            {"role": "system", "content": "S"},
            {"role": "user", "content": [{"type": "text", "text": "hide"}, {"type": "image", "path": "a"}]},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": [{"type": "image", "path": "b"}]},
        ])
    );
}
