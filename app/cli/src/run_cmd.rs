//! `lumine run`: the agent, headless, on a live window (or recorded frames),
//! logging each step.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use lumine_action::KeyVocabulary;
use lumine_config::{AgentMode, Config};
use lumine_runtime::live::{self, WindowSpec};
use lumine_runtime::policy::{
    EnginePolicy, EnginePolicyOptions, Policy, ReplayPolicy, ScriptPolicy,
};
use lumine_runtime::trajectory::{Trajectory, TrajectoryMeta, TrajectorySource, TrajectoryWriter};
use lumine_runtime::{
    DenyList, DirFrames, EventKind, FocusTarget, FrameInput, RunState, RunSummary, Runtime,
    RuntimeConfig, RuntimeParts, StopReason, key_from_name,
};

use crate::generate_cmd::{ModelArgs, ProviderArg};

/// Options shared by the commands that play into a window.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// The window: a title substring or a native id (0x…); the configuration's
    /// `target_window` if omitted.
    #[arg(long, value_name = "TITLE|ID")]
    pub window: Option<String>,
    /// X display (default: $DISPLAY).
    #[arg(long, value_name = ":N")]
    pub display: Option<String>,
}

/// Arguments of `lumine run`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).args(["model", "script", "replay", "remote"])))]
pub struct RunArgs {
    #[command(flatten)]
    target: WindowArgs,
    /// No input monitor: no operator takeover and no emergency hotkey (SIGINT,
    /// SIGTERM and stop still release everything).
    #[arg(long)]
    no_monitor: bool,
    /// Read frames from this folder (image files, or a trajectory) instead of a
    /// window: an offline run, nothing is injected.
    #[arg(long, value_name = "DIR", conflicts_with = "window")]
    frames: Option<PathBuf>,
    /// Run this model (a directory holding manifest.ron).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Play these action strings, one per line.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Play the actions of this recorded trajectory.
    #[arg(long, value_name = "DIR")]
    replay: Option<PathBuf>,
    /// The remote engine (boxed: it keeps `lumine`'s command enum small).
    #[command(flatten)]
    remote: Box<RemoteArgs>,
    /// The operator's instruction.
    #[arg(long, value_name = "TEXT")]
    instruction: Option<String>,
    /// Stop after this many steps.
    #[arg(long, value_name = "N")]
    steps: Option<u64>,
    /// Record the run into this (new) folder.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Key names for --script / --replay (RON; default: the built-in names).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Pixels per unit of DX,DY (default: the model's, else 1,1).
    #[arg(long, value_name = "X,Y", value_parser = parse_pair_f32)]
    mouse_scale: Option<(f32, f32)>,
    /// Scale frames to WIDTHxHEIGHT (default: the model's size; scripts keep
    /// frames as captured).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    frame_size: Option<(u32, u32)>,
    /// Frames of history in the context (default: the configuration's).
    #[arg(long, value_name = "N")]
    history: Option<usize>,
    /// Upper bound on the prompt's tokens (older frames are evicted to fit).
    #[arg(long, value_name = "N")]
    token_budget: Option<usize>,
    /// Play each turn only once it is complete and capture the next frame
    /// after it has played (no deadline misses; the game runs on while the
    /// policy thinks). For offline runs and models too slow for real time.
    #[arg(long)]
    lockstep: bool,
    /// Time from the first capture to the first chunk, ms.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    lead_ms: u64,
    /// Execution provider for --model.
    #[arg(long, value_enum)]
    provider: Option<ProviderArg>,
    /// GPU device id for --model.
    #[arg(long)]
    device: Option<u32>,
    /// Run on the CPU if the GPU provider cannot start.
    #[arg(long)]
    allow_cpu_fallback: bool,
    /// Print only the summary, not every step.
    #[arg(long, short)]
    quiet: bool,
}

/// Options of `lumine run --remote` (app/remote/README.md).
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Ask a remote OpenAI-compatible engine (vLLM, SGLang) at this base URL,
    /// e.g. http://127.0.0.1:8000; the API key comes from $LUMINE_REMOTE_API_KEY.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Model name the remote engine serves (default: lumine).
    #[arg(long, value_name = "NAME")]
    pub remote_model: Option<String>,
    /// System prompt for --remote (default: a built-in prompt for the
    /// action language, see app/remote/README.md).
    #[arg(long, value_name = "FILE")]
    pub system_prompt_file: Option<PathBuf>,
    /// Ask the remote engine for output constrained to the action language:
    /// vLLM's `guided_regex` or SGLang's `regex` (every answer is validated
    /// here either way).
    #[arg(long, value_name = "ENGINE", value_parser = ["vllm", "sglang"])]
    pub remote_guided: Option<String>,
    /// How frames are sent to the remote engine: jpeg (quality 85, the
    /// default) or png (lossless: the exact pixels the embedded engine sees).
    #[arg(long, value_name = "FORMAT", value_parser = ["jpeg", "png"])]
    pub remote_image_format: Option<String>,
    /// Send only fields of the OpenAI schema (no `skip_special_tokens`), for
    /// servers that refuse other fields, such as `transformers serve`.
    #[arg(long)]
    pub remote_strict_openai: bool,
}

/// Parses `X,Y`.
pub fn parse_pair_f32(text: &str) -> Result<(f32, f32), String> {
    let (x, y) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} is not X,Y"))?;
    let parse = |s: &str| s.trim().parse::<f32>().map_err(|e| format!("{s:?}: {e}"));
    Ok((parse(x)?, parse(y)?))
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|e| format!("{s:?}: {e}"));
    match (parse(w)?, parse(h)?) {
        (0, _) | (_, 0) => Err("width and height must be positive".to_owned()),
        size => Ok(size),
    }
}

/// A key vocabulary file, or the built-in one.
pub fn load_keys(path: Option<&Path>) -> anyhow::Result<KeyVocabulary> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            KeyVocabulary::from_ron(&text).with_context(|| format!("{}", path.display()))
        }
        None => Ok(KeyVocabulary::default()),
    }
}

/// The window to play: `--window`, else the configuration's.
pub fn window_spec(args: &WindowArgs, config: &Config) -> anyhow::Result<WindowSpec> {
    match args.window.as_deref().or(config.target_window.as_deref()) {
        Some(window) => Ok(WindowSpec::parse(window)),
        None => bail!("no window: pass --window TITLE (or set target_window in the configuration)"),
    }
}

/// Where a run plays: a live window, or recorded frames with a dry-run sink.
struct Target {
    title: String,
    /// Size of the captured frames, when known in advance.
    size: Option<(u32, u32)>,
    frames: FrameInput,
    sink: Box<dyn lumine_platform::InputSink>,
    focus: Option<FocusTarget>,
    monitor: Option<Box<dyn lumine_platform::InputMonitor>>,
}

/// Opens the live window, or the frames folder.
fn open_target(
    args: &WindowArgs,
    no_monitor: bool,
    frames: Option<&Path>,
    config: &Config,
) -> anyhow::Result<Target> {
    if let Some(dir) = frames {
        let frames = DirFrames::open(dir)?;
        eprintln!(
            "offline run on {} frames from {} (nothing is injected)",
            frames.len(),
            dir.display()
        );
        return Ok(Target {
            title: dir.display().to_string(),
            size: None,
            frames: FrameInput::Directory(frames),
            sink: Box::new(lumine_runtime::DryRunSink::new()),
            focus: None,
            monitor: None,
        });
    }
    let spec = window_spec(args, config)?;
    let emergency = if no_monitor {
        None
    } else {
        Some(key_from_name(&config.emergency_stop_key).with_context(|| {
            format!(
                "emergency_stop_key {:?} is not a key name",
                config.emergency_stop_key
            )
        })?)
    };
    let w = live::open(args.display.as_deref(), &spec, emergency)
        .with_context(|| format!("cannot open the window {spec:?}"))?;
    eprintln!(
        "window {:#x} {:?} ({}x{})",
        w.info.id.0, w.info.title, w.info.width, w.info.height
    );
    Ok(Target {
        size: Some((w.info.width, w.info.height)),
        title: w.info.title,
        frames: w.frames,
        sink: w.sink,
        focus: Some(w.focus),
        monitor: w.monitor,
    })
}

/// Runs `lumine run`.
pub fn run(args: &RunArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let r = &args.remote;
    if r.remote.is_none()
        && (r.remote_model.is_some()
            || r.system_prompt_file.is_some()
            || r.remote_guided.is_some()
            || r.remote_image_format.is_some()
            || r.remote_strict_openai)
    {
        bail!(
            "--remote-model, --system-prompt-file, --remote-guided, --remote-image-format and \
             --remote-strict-openai need --remote"
        );
    }
    let mut settings = RuntimeConfig::new(KeyVocabulary::default());
    settings.history_frames = args.history.unwrap_or(config.history_frames);
    settings.instruction.clone_from(&args.instruction);
    settings.max_steps = args.steps;
    settings.first_step_lead = Duration::from_millis(args.lead_ms);
    settings.lockstep = args.lockstep;
    settings.token_budget = args.token_budget;
    settings.takeover_idle = Duration::from_millis(config.takeover_idle_ms);
    settings.deny_list = DenyList::parse(&config.deny_list)?;
    let policy: Box<dyn Policy> = if let Some(dir) = &args.model {
        let model = ModelArgs {
            model: dir.clone(),
            provider: args.provider,
            device: args.device,
            allow_cpu_fallback: args.allow_cpu_fallback,
        };
        let policy = engine_policy(&model, config.mode, config, &mut settings)?;
        if let Some(size) = args.frame_size {
            settings.frame_size = Some(size);
        }
        policy
    } else if let Some(path) = &args.script {
        settings.vocab = load_keys(args.keys.as_deref())?;
        settings.frame_size = args.frame_size;
        Box::new(ScriptPolicy::load(path, &settings.vocab)?)
    } else if let Some(dir) = &args.replay {
        settings.vocab = load_keys(args.keys.as_deref())?;
        let meta = Trajectory::open(dir)?.meta;
        settings.mouse_scale = (meta.mouse_scale[0], meta.mouse_scale[1]);
        settings.frame_size = args.frame_size;
        Box::new(ReplayPolicy::open(dir, &settings.vocab)?)
    } else if let Some(url) = &args.remote.remote {
        settings.vocab = load_keys(args.keys.as_deref())?;
        settings.frame_size = args.frame_size;
        let reasoning = config.mode == AgentMode::Reasoning;
        settings.system_prompt = match &args.remote.system_prompt_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => lumine_remote::default_system_prompt(reasoning),
        };
        let mut options = lumine_remote::RemoteOptions::new(
            url,
            args.remote.remote_model.as_deref().unwrap_or("lumine"),
        );
        options.allow_thought = reasoning;
        options.guided = match args.remote.remote_guided.as_deref() {
            Some("vllm") => lumine_remote::GuidedDecoding::Vllm,
            Some("sglang") => lumine_remote::GuidedDecoding::Sglang,
            _ => lumine_remote::GuidedDecoding::Off,
        };
        if args.remote.remote_image_format.as_deref() == Some("png") {
            options.frame_format = lumine_remote::FrameFormat::Png;
        }
        options.strict_openai = args.remote.remote_strict_openai;
        Box::new(lumine_remote::RemotePolicy::new(options, &settings.vocab))
    } else {
        bail!("pass one of --model, --script, --replay, --remote");
    };
    if let Some(scale) = args.mouse_scale {
        settings.mouse_scale = scale;
    }
    let target = open_target(
        &args.target,
        args.no_monitor,
        args.frames.as_deref(),
        config,
    )?;
    let record = match &args.record {
        Some(dir) => {
            let mut meta = TrajectoryMeta::new(
                TrajectorySource::Agent,
                // 0x0: as captured, size not known in advance.
                settings.frame_size.or(target.size).unwrap_or((0, 0)),
                [settings.mouse_scale.0, settings.mouse_scale.1],
            );
            meta.window = Some(target.title.clone());
            meta.policy = Some(policy.describe());
            meta.instruction.clone_from(&settings.instruction);
            Some(TrajectoryWriter::create(dir, &meta, Instant::now())?)
        }
        None => None,
    };
    eprintln!("policy {}", policy.describe());
    let runtime = Runtime::start(
        RuntimeParts {
            frames: target.frames,
            sink: target.sink,
            focus: target.focus,
            monitor: target.monitor,
            policy,
            record,
        },
        settings,
    )?;
    runtime.install_signal_handlers()?;
    Ok(report(runtime, args.quiet))
}

/// Opens the model and sets up `settings` from its manifest (keys, system
/// prompt for `mode`, mouse scale, frame size, token counter): the engine
/// policy of `lumine run` and of the console.
pub fn engine_policy(
    model: &ModelArgs,
    mode: AgentMode,
    config: &Config,
    settings: &mut RuntimeConfig,
) -> anyhow::Result<Box<dyn Policy>> {
    let model = model.open(config)?;
    let m = &model.manifest;
    settings.vocab = model.keys.clone();
    settings.system_prompt = match mode {
        AgentMode::Instruction => m.prompts.instruction.clone(),
        AgentMode::Reasoning => m.prompts.reasoning.clone(),
    };
    settings.mouse_scale = (m.mouse_scale.x, m.mouse_scale.y);
    settings.frame_size = Some((m.frame.width, m.frame.height));
    if let Some(trained) = m.history_frames
        && settings.history_frames > trained
    {
        // More frames than it was trained with put it out of its depth.
        eprintln!(
            "history: {} frames, as the model was trained (asked for {})",
            trained, settings.history_frames
        );
        settings.history_frames = trained;
    }
    let options = EnginePolicyOptions {
        allow_thought: mode == AgentMode::Reasoning,
        ..EnginePolicyOptions::default()
    };
    let policy = EnginePolicy::new(model, options);
    settings.text_tokens = Some(policy.token_counter());
    Ok(Box::new(policy))
}

/// Logs the run's events until it ends, then its summary; the exit status.
pub fn report(runtime: Runtime, quiet: bool) -> ExitCode {
    let events = runtime.events().clone();
    let mut misses = 0u64;
    loop {
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => match event.kind {
                EventKind::StepDecided(s) if !quiet => {
                    let thought = s.thought.map(|t| format!("  <{t}>")).unwrap_or_default();
                    println!(
                        "step {:>5}  {:<8}  first chunk {:>7.1} ms  turn {:>7.1} ms  {}{thought}",
                        s.step,
                        format!("{:?}", s.actor).to_lowercase(),
                        s.latency.first_chunk_ms,
                        s.latency.turn_ms,
                        s.action
                    );
                }
                EventKind::State(state) => eprintln!("state: {state:?}"),
                EventKind::TurnRejected { step, error } => {
                    eprintln!("step {step}: turn rejected, keys released: {error}");
                }
                EventKind::DeadlineMiss { .. } => misses += 1,
                EventKind::KeysDenied {
                    step,
                    combination,
                    dropped,
                    ..
                } => eprintln!("step {step}: {combination} denied, dropped {dropped:?}"),
                EventKind::Notice(notice) => eprintln!("{notice}"),
                _ => {}
            },
            Err(_) => {
                if runtime.is_finished() && events.is_empty() {
                    break;
                }
            }
        }
    }
    let dropped = runtime.events_dropped();
    let summary = runtime.wait();
    print_summary(&summary, dropped, misses);
    exit_code(&summary.state)
}

fn print_summary(summary: &RunSummary, dropped: u64, misses: u64) {
    eprintln!("{}", summary_text(summary, dropped, misses));
    match &summary.recorded {
        Some(Ok(n)) => eprintln!("recorded {n} steps"),
        Some(Err(e)) => eprintln!("recording failed: {e}"),
        None => {}
    }
}

/// One line about a finished run: steps, chunks, misses, boundary errors.
pub fn summary_text(summary: &RunSummary, dropped: u64, misses: u64) -> String {
    let e = &summary.executor;
    let b = &e.boundary;
    format!(
        "{} steps ({} rejected), {} chunks played, {} deadline misses ({misses} reported), {} late skips; \
         chunk boundary error p50 {} us, p99 {} us, max {} us; executor priority: {}; {} events dropped",
        summary.steps,
        summary.rejected,
        e.chunks_played,
        e.deadline_misses,
        e.late_skips,
        b.quantile_us(0.5),
        b.quantile_us(0.99),
        b.max_us(),
        e.priority,
        dropped
    )
}

/// 0 for a normal end, 130 / 143 after SIGINT / SIGTERM, 3 after the
/// emergency stop, 1 on failure.
pub fn exit_code(state: &RunState) -> ExitCode {
    match state {
        RunState::Stopped(StopReason::Finished | StopReason::Command) => ExitCode::SUCCESS,
        RunState::Stopped(StopReason::Interrupt) => ExitCode::from(130),
        RunState::Stopped(StopReason::Terminate) => ExitCode::from(143),
        RunState::Stopped(StopReason::EmergencyStop) => ExitCode::from(3),
        _ => ExitCode::FAILURE,
    }
}
