//! `lumine` / `lumine console`: the operator console, and the launcher that
//! turns its requests into runs (model, window, runtime) on named threads.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use crossbeam_channel::{Receiver, select};
use lumine_config::{AgentMode, Config};
use lumine_runtime::live::{self, WindowSpec};
use lumine_runtime::trajectory::{TrajectoryMeta, TrajectorySource, TrajectoryWriter};
use lumine_runtime::{
    Command, DenyList, EventKind, Runtime, RuntimeConfig, RuntimeParts, key_from_name,
};
use lumine_ui::{
    LaunchRequest, Launcher, Mode, ModelChoice, Provider, RunInfo, SettingsStore, TargetChoice,
    UiEvent, UiSender, WindowChoice,
};

use crate::generate_cmd::{ModelArgs, ProviderArg};
use crate::run_cmd::{engine_policy, parse_size, summary_text};

/// Title of the practice arena's window (`lumine arena`).
pub const ARENA_TITLE: &str = "Lumine Arena";

/// How long to wait for the arena's window to appear.
const ARENA_WAIT: Duration = Duration::from_secs(15);

/// File in a models folder naming the bundled default model's folder.
const DEFAULT_MODEL_FILE: &str = "DEFAULT";

/// Arguments of `lumine console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Start the agent at once on the saved choice (on the first run it
    /// starts anyway, on the embedded default).
    #[arg(long)]
    pub autostart: bool,
    /// Window size, WIDTHxHEIGHT.
    #[arg(long, value_name = "WxH", value_parser = parse_size, default_value = "1600x900")]
    pub size: (u32, u32),
    /// X display (default: $DISPLAY).
    #[arg(long, value_name = ":N")]
    pub display: Option<String>,
}

impl ConsoleArgs {
    /// What `lumine` with no subcommand uses.
    #[must_use]
    pub fn default_args() -> ConsoleArgs {
        ConsoleArgs {
            autostart: false,
            size: (1600, 900),
            display: None,
        }
    }
}

/// Runs the console until its window is closed.
pub fn run(args: &ConsoleArgs, config: Config) -> anyhow::Result<ExitCode> {
    if let Some(display) = &args.display {
        // winit reads the display from the environment; the launcher's
        // threads are not started yet, so nothing else reads it concurrently.
        set_display(display);
    }
    let launcher = RealLauncher {
        config,
        display: args.display.clone(),
    };
    lumine_ui::run_native(
        Box::new(launcher),
        SettingsStore::default_location(),
        args.autostart,
        (args.size.0 as f32, args.size.1 as f32),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the console window: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[allow(unsafe_code)]
fn set_display(display: &str) {
    // SAFETY: called on the main thread before any other thread exists
    // (the console, its launcher and winit are created after this).
    unsafe { std::env::set_var("DISPLAY", display) };
}

/// The launcher the console binary uses: real models, windows and runtime.
#[derive(Debug)]
pub struct RealLauncher {
    config: Config,
    display: Option<String>,
}

impl Launcher for RealLauncher {
    fn launch(
        &mut self,
        request: LaunchRequest,
        commands: Receiver<Command>,
        events: UiSender,
    ) -> std::io::Result<JoinHandle<()>> {
        let config = self.config.clone();
        let display = self.display.clone();
        std::thread::Builder::new()
            .name("lumine-session".to_owned())
            .spawn(move || session(&request, &config, display.as_deref(), &commands, &events))
    }

    fn list_windows(&mut self, events: UiSender) {
        let display = self.display.clone();
        let spawned = std::thread::Builder::new()
            .name("lumine-window-list".to_owned())
            .spawn(move || events.send(UiEvent::Windows(list_windows(display.as_deref()))));
        if let Err(err) = spawned {
            eprintln!("cannot list windows: {err}");
        }
    }
}

/// The windows with small captures, for the picker.
fn list_windows(display: Option<&str>) -> Result<Vec<WindowChoice>, String> {
    let mut windows = live::window_system(display).map_err(|e| e.to_string())?;
    let list = windows.windows().map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter(|w| !w.minimized && w.title != lumine_ui::WINDOW_TITLE)
        .map(|w| {
            let thumbnail = live::open(display, &WindowSpec::Id(w.id), None)
                .ok()
                .and_then(|mut live| live.frames.next_frame().ok())
                .map(|frame| std::sync::Arc::new(thumbnail(&frame, 160)));
            WindowChoice {
                title: w.title,
                size: (w.width, w.height),
                thumbnail,
            }
        })
        .collect())
}

/// `frame` scaled to `width` pixels wide.
fn thumbnail(frame: &lumine_vision::RgbImage, width: u32) -> lumine_vision::RgbImage {
    let height =
        (u64::from(frame.height) * u64::from(width) / u64::from(frame.width.max(1))).max(1);
    let height = u32::try_from(height).unwrap_or(1);
    let data =
        lumine_platform::scale::resize_rgb(&frame.data, frame.width, frame.height, width, height);
    lumine_vision::RgbImage::new(width, height, data).unwrap_or_default()
}

/// A run from launch to end; every path out of it has released every key
/// (the runtime does that on stop) and stopped the arena it started.
fn session(
    request: &LaunchRequest,
    config: &Config,
    display: Option<&str>,
    commands: &Receiver<Command>,
    events: &UiSender,
) {
    let mut arena = None;
    let started = start_run(request, config, display, &mut arena);
    let (runtime, info) = match started {
        Ok(started) => started,
        Err(err) => {
            eprintln!("console: cannot start: {err:#}");
            events.send(UiEvent::LaunchFailed(format!("{err:#}")));
            stop_arena(arena);
            return;
        }
    };
    eprintln!(
        "console: running {} on {:?} ({})",
        info.policy, info.window, info.provider
    );
    events.send(UiEvent::Launched(info));
    let runtime_events = runtime.events().clone();
    let to_runtime = runtime.commands();
    let mut misses = 0u64;
    loop {
        select! {
            recv(runtime_events) -> event => match event {
                Ok(event) => {
                    match &event.kind {
                        EventKind::DeadlineMiss { .. } => misses += 1,
                        EventKind::StepDecided(step) => eprintln!(
                            "console: step {} {:?} first chunk {:.1} ms: {}{}",
                            step.step,
                            step.actor,
                            step.latency.first_chunk_ms,
                            step.action,
                            step.thought
                                .as_deref()
                                .map(|t| format!("  <{t}>"))
                                .unwrap_or_default()
                        ),
                        EventKind::State(state) => eprintln!("console: state {state:?}"),
                        EventKind::TurnRejected { step, error } => {
                            eprintln!("console: step {step} rejected, keys released: {error}");
                        }
                        _ => {}
                    }
                    events.send_lossy(UiEvent::Runtime(event));
                }
                Err(_) => break,
            },
            recv(commands) -> command => match command {
                Ok(command) => {
                    let _ = to_runtime.try_send(command);
                }
                // The console is gone: stop (the runtime releases everything).
                Err(_) => {
                    let _ = to_runtime.try_send(Command::Stop);
                    break;
                }
            },
            default(Duration::from_millis(50)) => {
                if runtime.is_finished() && runtime_events.is_empty() {
                    break;
                }
            }
        }
    }
    // Drain what is left, then wait for the threads (keys are released by now
    // or by the executor's exit path).
    while let Ok(event) = runtime_events.try_recv() {
        events.send_lossy(UiEvent::Runtime(event));
    }
    if !runtime.is_finished() {
        let _ = to_runtime.try_send(Command::Stop);
    }
    let dropped = runtime.events_dropped();
    let summary = runtime.wait();
    let text = summary_text(&summary, dropped, misses);
    eprintln!("console: {text}");
    events.send(UiEvent::Ended {
        state: summary.state,
        summary: text,
    });
    stop_arena(arena);
}

fn stop_arena(arena: Option<Child>) {
    if let Some(mut child) = arena {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Opens the model and the window and starts the runtime (paused until the
/// console's Start command).
fn start_run(
    request: &LaunchRequest,
    config: &Config,
    display: Option<&str>,
    arena: &mut Option<Child>,
) -> anyhow::Result<(Runtime, RunInfo)> {
    let model_dir = match &request.model {
        ModelChoice::Bundled => bundled_model(config)?,
        ModelChoice::Folder(dir) => dir.clone(),
    };
    let mut settings = RuntimeConfig::new(lumine_action::KeyVocabulary::default());
    settings.history_frames = request.history_frames;
    settings.instruction.clone_from(&request.instruction);
    settings.takeover_idle = Duration::from_millis(config.takeover_idle_ms);
    settings.deny_list = DenyList::parse(&config.deny_list)?;
    settings.start_running = false;
    let mode = match request.mode {
        Mode::Instruction => AgentMode::Instruction,
        Mode::Reasoning => AgentMode::Reasoning,
    };
    let model = ModelArgs {
        model: model_dir,
        provider: Some(match request.provider {
            Provider::Cpu => ProviderArg::Cpu,
            Provider::Cuda => ProviderArg::Cuda,
            Provider::TensorRt => ProviderArg::Tensorrt,
        }),
        device: Some(request.device),
        allow_cpu_fallback: false,
    };
    let policy = engine_policy(&model, mode, config, &mut settings)?;
    let provider = request.provider.name();

    let spec = match &request.target {
        TargetChoice::PracticeArena => {
            let (child, task) = start_arena(display)?;
            *arena = Some(child);
            // The arena's task is the instruction unless the operator gave one.
            if settings.instruction.is_none() {
                settings.instruction = Some(task);
            }
            wait_for_window(display, ARENA_TITLE, ARENA_WAIT)?
        }
        TargetChoice::Window { title } if title.trim().is_empty() => {
            bail!("no target window: pick one from the list, or choose the practice arena")
        }
        TargetChoice::Window { title } => WindowSpec::Title(title.clone()),
    };
    let emergency = key_from_name(&config.emergency_stop_key).with_context(|| {
        format!(
            "emergency_stop_key {:?} is not a key name",
            config.emergency_stop_key
        )
    })?;
    let window = live::open(display, &spec, Some(emergency))
        .with_context(|| format!("cannot open the window {spec:?}"))?;
    let recording = match &request.record_into {
        Some(root) => {
            let dir = root.join(recording_name());
            let mut meta = TrajectoryMeta::new(
                TrajectorySource::Agent,
                settings
                    .frame_size
                    .unwrap_or((window.info.width, window.info.height)),
                [settings.mouse_scale.0, settings.mouse_scale.1],
            );
            meta.window = Some(window.info.title.clone());
            meta.policy = Some(policy.describe());
            meta.instruction.clone_from(&settings.instruction);
            std::fs::create_dir_all(root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            Some((TrajectoryWriter::create(&dir, &meta, Instant::now())?, dir))
        }
        None => None,
    };
    let info = RunInfo {
        window: window.info.title.clone(),
        policy: policy.describe(),
        provider: provider.to_owned(),
        system_prompt: settings.system_prompt.clone(),
        token_budget: settings.token_budget,
        history_frames: settings.history_frames,
        emergency_key: config.emergency_stop_key.clone(),
        recording: recording.as_ref().map(|(_, dir)| dir.clone()),
        instruction: settings.instruction.clone(),
    };
    let runtime = Runtime::start(
        RuntimeParts {
            frames: window.frames,
            sink: window.sink,
            focus: Some(window.focus),
            monitor: window.monitor,
            policy,
            record: recording.map(|(writer, _)| writer),
        },
        settings,
    )?;
    Ok((runtime, info))
}

/// A folder name for a new recording: the local time is not needed, a
/// monotonic-enough stamp from the system clock keeps them ordered.
fn recording_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("run-{secs}")
}

/// Starts `lumine arena` (this same binary) as a child process on a fresh
/// layout; returns it with the text of its task.
fn start_arena(display: Option<&str>) -> anyhow::Result<(Child, String)> {
    let exe = std::env::current_exe().context("cannot find the lumine executable")?;
    let seed = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() % 100_000),
    );
    let task = lumine_arena::World::new(seed, None)
        .map_err(|e| anyhow::anyhow!("practice arena layout {seed}: {e}"))?
        .task()
        .text();
    let mut command = std::process::Command::new(exe);
    command.arg("arena").arg("--seed").arg(seed.to_string());
    if let Some(display) = display {
        command.arg("--display").arg(display);
    }
    let child = command
        .stdin(std::process::Stdio::null())
        .spawn()
        .context("cannot start the practice arena (lumine arena)")?;
    Ok((child, task))
}

/// Waits until a window whose title contains `title` exists.
fn wait_for_window(
    display: Option<&str>,
    title: &str,
    wait: Duration,
) -> anyhow::Result<WindowSpec> {
    let deadline = Instant::now() + wait;
    let mut windows = live::window_system(display)?;
    loop {
        match windows.find(title) {
            Ok(info) => return Ok(WindowSpec::Id(info.id)),
            Err(err) if Instant::now() >= deadline => {
                bail!("the practice arena's window did not appear: {err}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The bundled default model: the configuration's `model` if set, else the
/// folder named by `models/DEFAULT` in the first models folder found next to
/// the executable, in the source tree it was built from, or in the working
/// directory.
pub fn bundled_model(config: &Config) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &config.model {
        return Ok(dir.clone());
    }
    let mut roots = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            roots.push(up.join("models"));
            roots.push(up.join("share/lumine-console/models"));
        }
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd.join("models"));
    }
    for root in &roots {
        if let Some(dir) = default_in(root) {
            return Ok(dir);
        }
    }
    bail!(
        "no model folder: no bundled model was found (looked for models/{DEFAULT_MODEL_FILE} in {}); \
         pick a model folder holding manifest.ron",
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn default_in(root: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(root.join(DEFAULT_MODEL_FILE)).ok()?;
    let dir = root.join(name.trim());
    dir.join("manifest.ron").is_file().then_some(dir)
}
