//! The ONNX Runtime policy with the committed tiny test model: the context's
//! messages tokenise exactly like transformers' chat template (golden), and
//! a turn that does not parse is rejected without anything being played.
#![cfg(feature = "engine")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lumine_context::{Context, ContextConfig, frame_tokens};
use lumine_engine::Model;
use lumine_engine::generate::build_prompt;
use lumine_engine::provider::ProviderOptions;
use lumine_runtime::frames::load_rgb;
use lumine_runtime::policy::{EnginePolicy, EnginePolicyOptions, SharedFrame, to_engine_messages};
use lumine_runtime::{
    DirFrames, DryRunSink, Event, EventKind, FrameInput, RunState, RunSummary, Runtime,
    RuntimeConfig, RuntimeParts, StopReason,
};

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/test-tiny")
}

fn model() -> Model {
    Model::load(&model_dir(), &ProviderOptions::default(), None).expect("the tiny test model loads")
}

fn golden(name: &str) -> serde_json::Value {
    let path = model_dir().join("golden").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn context_messages_tokenise_like_the_golden_prompt() {
    let mut model = model();
    let messages = golden("b.messages.json");
    let frame = |name: &str| -> SharedFrame {
        Arc::new(load_rgb(&model_dir().join("golden").join(name)).unwrap())
    };
    let mut ctx = Context::new(ContextConfig {
        system_prompt: messages[0]["content"].as_str().unwrap().to_owned(),
        history_frames: 10,
        token_budget: None,
        frame_tokens: frame_tokens(1280, 720),
    });
    ctx.set_instruction(Some("Follow the road to the next village. ".to_owned()));
    ctx.push_frame(0, frame("frame_b1.png"), None);
    ctx.record_answer(0, None, messages[2]["content"].as_str().unwrap().to_owned())
        .unwrap();
    ctx.push_frame(
        1,
        frame("frame_b2.png"),
        Some("前方有敌人，先躲到石头后面。".to_owned()),
    );
    let (engine_messages, images) = to_engine_messages(&ctx.messages());
    let prompt = build_prompt(&mut model, &engine_messages, &images).unwrap();
    let want: Vec<u32> = golden("b.golden.json")["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| u32::try_from(v.as_u64().unwrap()).unwrap())
        .collect();
    assert_eq!(prompt.input_ids, want);
}

/// A dry run of `model` over the golden frames in lock-step: 112x56 frames
/// keep the CPU run short, two frames of history. Returns the summary and
/// every event.
fn dry_run_on_golden_frames(
    model: Model,
    system_prompt: &str,
    instruction: Option<&str>,
    options: EnginePolicyOptions,
) -> (RunSummary, Vec<Event>) {
    let mut config = RuntimeConfig::new(model.keys.clone());
    config.system_prompt = system_prompt.to_owned();
    config.instruction = instruction.map(str::to_owned);
    config.frame_size = Some((112, 56));
    config.history_frames = 2;
    config.lockstep = true;
    let frames = DirFrames::open(&model_dir().join("golden")).unwrap();
    let runtime = Runtime::start(
        RuntimeParts {
            frames: FrameInput::Directory(frames),
            sink: Box::new(DryRunSink::new()),
            focus: None,
            monitor: None,
            policy: Box::new(EnginePolicy::new(model, options)),
            record: None,
        },
        config,
    )
    .unwrap();
    let events = runtime.events().clone();
    let summary = runtime.wait();
    (summary, events.try_iter().collect())
}

#[test]
fn the_model_decodes_under_the_grammar_and_every_turn_is_played() {
    let model = model();
    let keys = model.keys.clone();
    let system = model.manifest.prompts.instruction.clone();
    let (summary, events) = dry_run_on_golden_frames(
        model,
        &system,
        Some("Walk to the door."),
        EnginePolicyOptions::default(),
    );
    assert_eq!(summary.state, RunState::Stopped(StopReason::Finished));
    // The random model would write gibberish on its own; under the action grammar
    // every turn parses, and all six chunks of each of the three steps are played.
    assert_eq!(summary.rejected, 0, "{summary:?}");
    assert_eq!(summary.executor.chunks_played, 18, "{summary:?}");
    let actions: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepDecided(step) => Some(step.action.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(actions.len(), 3, "{events:?}");
    for action in actions {
        let turn = lumine_action::parse_turn(action, &keys).unwrap();
        assert_eq!(turn.format(&keys), action);
    }
}

#[test]
fn a_turn_that_runs_out_of_tokens_is_rejected_and_the_run_goes_on() {
    let model = model();
    let system = model.manifest.prompts.reasoning.clone();
    // Four tokens cannot hold a whole action: every turn is cut short.
    let options = EnginePolicyOptions {
        max_new_tokens: 4,
        ..EnginePolicyOptions::default()
    };
    let (summary, _) = dry_run_on_golden_frames(model, &system, None, options);
    // Each step is lost, nothing of it is played, and the run ends normally
    // when the frames do, instead of failing on the first short turn.
    assert_eq!(summary.state, RunState::Stopped(StopReason::Finished));
    assert_eq!(summary.rejected, 3, "{summary:?}");
    assert_eq!(summary.executor.chunks_played, 0, "{summary:?}");
}
