//! `lumine eval arena`: episodes in real time through the real path. For each
//! episode the arena window runs as a child process (`lumine arena`, an
//! unseen seed, its state on a pipe), and the runtime plays it exactly as
//! `lumine run` plays a game: X11 capture, the policy, the 30 Hz executor,
//! XTest injection. The arena's state (never shown to the policy) says when
//! the task is done.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command as Process, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use lumine_action::{Action, KeyVocabulary, StreamEvent, Turn};
use lumine_arena::expert::{Expert, MouseCarry, distance_to_goal};
use lumine_arena::{State, TaskKind, World};
use lumine_config::Config;
use lumine_runtime::live::{self, WindowSpec};
use lumine_runtime::policy::{Observation, stream_turn};
use lumine_runtime::{
    Command, DenyList, Policy, PolicyError, Runtime, RuntimeConfig, RuntimeParts,
};
use serde::Serialize;

use crate::arena_cmd::parse_task;
use crate::generate_cmd::{ModelArgs, ProviderArg};
use crate::run_cmd::{engine_policy, parse_pair_f32, parse_size};

/// `lumine eval ...`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Success rate and completion time on practice-arena tasks, in real time
    /// through the real path (window, capture, engine, executor, injection).
    Arena(EvalArenaArgs),
}

/// Arguments of `lumine eval arena`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("agent").required(true).args(["model", "expert"])))]
pub struct EvalArenaArgs {
    /// The model to evaluate (a directory holding manifest.ron).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Evaluate the scripted expert instead (it reads the arena's state: a
    /// baseline for the path and the tasks, not a policy).
    #[arg(long)]
    expert: bool,
    /// Episodes in all (task kinds are cycled).
    #[arg(long, value_name = "N", default_value_t = 12)]
    episodes: u64,
    /// Task kinds (default: all).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', value_parser = parse_task)]
    tasks: Vec<TaskKind>,
    /// Seed of the first episode (episode i uses seed + i). The default is far
    /// from the seeds demonstrations use by default (0 up).
    #[arg(long, value_name = "S", default_value_t = 1_000_000)]
    seed: u64,
    /// Give up on an episode after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    timeout: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Run the episodes on a private Xvfb (no desktop needed).
    #[arg(long)]
    xvfb: bool,
    /// X display (default: $DISPLAY).
    #[arg(long, value_name = ":N", conflicts_with = "xvfb")]
    display: Option<String>,
    /// Arena window size.
    #[arg(long, value_name = "WxH", value_parser = parse_size, default_value = "640x360")]
    size: (u32, u32),
    /// Mouse scale of the expert (the model's comes from its manifest).
    #[arg(long, value_name = "X,Y", value_parser = parse_pair_f32, default_value = "5,4")]
    mouse_scale: (f32, f32),
    /// Execution provider for --model.
    #[arg(long, value_enum)]
    provider: Option<ProviderArg>,
    /// Print each episode's result on standard error.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs `lumine eval`.
pub fn run(cmd: &EvalCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        EvalCommand::Arena(args) => run_arena(args, config),
    }
}

/// One task kind's results.
#[derive(Debug, Default, Clone, Serialize)]
struct KindReport {
    episodes: u64,
    successes: u64,
    success_rate: f64,
    /// Mean seconds from the first chunk to success, over the successes.
    mean_seconds: Option<f64>,
    /// Mean share of the path to the goal covered (1 for a success; below 0
    /// when the agent ended further away than it started).
    mean_progress: f64,
    #[serde(skip)]
    seconds: Vec<f64>,
    #[serde(skip)]
    progress: Vec<f64>,
}

impl KindReport {
    fn add(&mut self, success: Option<f64>, progress: f64) {
        self.episodes += 1;
        self.progress.push(progress);
        self.mean_progress = self.progress.iter().sum::<f64>() / self.progress.len() as f64;
        if let Some(s) = success {
            self.successes += 1;
            self.seconds.push(s);
        }
        self.success_rate = self.successes as f64 / self.episodes as f64;
        self.mean_seconds = (!self.seconds.is_empty())
            .then(|| self.seconds.iter().sum::<f64>() / self.seconds.len() as f64);
    }

    fn merge(&mut self, other: &KindReport) {
        self.episodes += other.episodes;
        self.successes += other.successes;
        self.seconds.extend(&other.seconds);
        self.progress.extend(&other.progress);
        self.success_rate = self.successes as f64 / self.episodes.max(1) as f64;
        self.mean_seconds = (!self.seconds.is_empty())
            .then(|| self.seconds.iter().sum::<f64>() / self.seconds.len() as f64);
        self.mean_progress = self.progress.iter().sum::<f64>() / self.progress.len().max(1) as f64;
    }
}

/// The whole evaluation, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Report {
    agent: String,
    first_seed: u64,
    episodes: u64,
    timeout_s: f64,
    tasks: BTreeMap<String, KindReport>,
    simple: KindReport,
    multi_step: KindReport,
    deadline_misses: u64,
    chunks_played: u64,
    /// Every episode, in order.
    runs: Vec<EpisodeRow>,
}

/// One episode in the report.
#[derive(Debug, Serialize)]
struct EpisodeRow {
    seed: u64,
    task: String,
    success: bool,
    seconds: Option<f64>,
    /// Cells to the goal at the start and at the end.
    distance_start: Option<usize>,
    distance_end: Option<usize>,
    progress: f64,
    deadline_misses: u64,
}

/// The arena's latest state, shared with the reader thread.
type Latest = Arc<Mutex<Option<State>>>;

fn latest(l: &Latest) -> Option<State> {
    l.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The arena window as a child process, its state read from its stdout.
struct ArenaChild {
    child: Child,
    state: Latest,
}

impl ArenaChild {
    fn start(
        display: Option<&str>,
        seed: u64,
        kind: TaskKind,
        size: (u32, u32),
    ) -> anyhow::Result<ArenaChild> {
        let exe = std::env::current_exe().context("cannot find the lumine binary")?;
        let mut cmd = Process::new(exe);
        cmd.args(["arena", "--seed", &seed.to_string(), "--task", kind.name()])
            .args(["--size", &format!("{}x{}", size.0, size.1)])
            .args([
                "--state-out",
                "-",
                "--title",
                &format!("Lumine Arena {seed}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(d) = display {
            cmd.args(["--display", d]);
        }
        let mut child = cmd.spawn().context("cannot start `lumine arena`")?;
        let out = child.stdout.take().context("no stdout")?;
        let state: Latest = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name("eval-arena-state".into())
            .spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(s) = serde_json::from_str::<State>(&line) {
                        *shared.lock().unwrap_or_else(PoisonError::into_inner) = Some(s);
                    }
                }
            })?;
        Ok(ArenaChild { child, state })
    }

    /// Waits for the window to be mapped; its id.
    fn window(&mut self) -> anyhow::Result<u64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(id) = latest(&self.state).and_then(|s| s.window) {
                return Ok(id);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("`lumine arena` exited ({status}) before its window opened");
            }
            if Instant::now() > deadline {
                bail!("the arena window did not open within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ArenaChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The scripted expert as a runtime policy: it plans from the arena's
/// reported state (a baseline; a real policy sees only frames).
struct ExpertPolicy {
    world: World,
    expert: Expert,
    pending: Action,
    scale: (f32, f32),
    state: Latest,
}

impl Policy for ExpertPolicy {
    fn describe(&self) -> String {
        "expert:lumine-arena".to_owned()
    }

    fn next_turn(
        &mut self,
        _observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        if let Some(state) = latest(&self.state) {
            self.world.sync_to(&state);
        }
        let decision = self.expert.act_ahead(
            &self.world,
            &self.pending,
            self.scale,
            &MouseCarry::default(),
        );
        self.pending = decision.action;
        let turn = Turn::new(decision.thought, decision.action)
            .map_err(|e| PolicyError::Failed(e.to_string()))?;
        stream_turn(&turn, out);
        Ok(turn)
    }
}

/// Result of one episode: seconds to success, if done; executor figures.
struct EpisodeResult {
    success_s: Option<f64>,
    distance_start: Option<usize>,
    distance_end: Option<usize>,
    deadline_misses: u64,
    chunks_played: u64,
}

fn run_arena(args: &EvalArenaArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let tasks = if args.tasks.is_empty() {
        TaskKind::ALL.to_vec()
    } else {
        args.tasks.clone()
    };
    let xvfb = if args.xvfb {
        let x = lumine_platform::x11::xvfb::Xvfb::start(args.size.0 + 64, args.size.1 + 64)?;
        x.set_auto_repeat(false)?;
        Some(x)
    } else {
        None
    };
    let display = xvfb
        .as_ref()
        .map(|x| x.display().to_owned())
        .or_else(|| args.display.clone());
    let agent = match &args.model {
        Some(dir) => format!("model:{}", dir.display()),
        None => "expert".to_owned(),
    };
    let mut report = Report {
        agent,
        first_seed: args.seed,
        episodes: args.episodes,
        timeout_s: args.timeout,
        tasks: BTreeMap::new(),
        simple: KindReport::default(),
        multi_step: KindReport::default(),
        deadline_misses: 0,
        chunks_played: 0,
        runs: Vec::new(),
    };
    for i in 0..args.episodes {
        let seed = args.seed + i;
        let kind = tasks[(i % tasks.len() as u64) as usize];
        let r = run_episode(args, config, display.as_deref(), seed, kind)?;
        if args.verbose {
            eprintln!(
                "seed {seed} {}: {} (cells to the goal {:?} -> {:?}; {} deadline misses)",
                kind.name(),
                r.success_s
                    .map_or_else(|| "not done".to_owned(), |s| format!("done in {s:.1} s")),
                r.distance_start,
                r.distance_end,
                r.deadline_misses
            );
        }
        let progress = match (r.success_s, r.distance_start, r.distance_end) {
            (Some(_), _, _) => 1.0,
            (None, Some(d0), Some(d1)) if d0 > 0 => (d0 as f64 - d1 as f64) / d0 as f64,
            _ => 0.0,
        };
        report
            .tasks
            .entry(kind.name().to_owned())
            .or_default()
            .add(r.success_s, progress);
        report.runs.push(EpisodeRow {
            seed,
            task: kind.name().to_owned(),
            success: r.success_s.is_some(),
            seconds: r.success_s,
            distance_start: r.distance_start,
            distance_end: r.distance_end,
            progress,
            deadline_misses: r.deadline_misses,
        });
        report.deadline_misses += r.deadline_misses;
        report.chunks_played += r.chunks_played;
    }
    for (name, k) in &report.tasks {
        let multi = TaskKind::from_name(name).is_some_and(TaskKind::multi_step);
        if multi {
            report.multi_step.merge(k);
        } else {
            report.simple.merge(k);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "agent: {}; seeds {}..{}",
            report.agent,
            args.seed,
            args.seed + args.episodes
        );
        println!("| task | episodes | successes | success rate | mean seconds | mean progress |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let rows = report.tasks.iter().map(|(n, k)| (n.as_str(), k)).chain([
            ("simple", &report.simple),
            ("multi-step", &report.multi_step),
        ]);
        for (name, k) in rows {
            println!(
                "| {name} | {} | {} | {:.0}% | {} | {:.2} |",
                k.episodes,
                k.successes,
                k.success_rate * 100.0,
                k.mean_seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
                k.mean_progress
            );
        }
        println!(
            "{} chunks played, {} deadline misses",
            report.chunks_played, report.deadline_misses
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_episode(
    args: &EvalArenaArgs,
    config: &Config,
    display: Option<&str>,
    seed: u64,
    kind: TaskKind,
) -> anyhow::Result<EpisodeResult> {
    let mut arena = ArenaChild::start(display, seed, kind, args.size)?;
    let window = arena.window()?;
    let world = World::new(seed, Some(kind))?;
    let fresh = world.clone();
    let distance = |state: Option<State>| {
        let mut w = fresh.clone();
        if let Some(s) = state {
            w.sync_to(&s);
        }
        distance_to_goal(&w)
    };
    let distance_start = distance(latest(&arena.state));
    let instruction = world.task().text();
    let mut settings = RuntimeConfig::new(KeyVocabulary::default());
    settings.history_frames = config.history_frames;
    settings.instruction = Some(instruction);
    settings.deny_list = DenyList::parse(&config.deny_list)?;
    let policy: Box<dyn Policy> = match &args.model {
        Some(dir) => {
            let model = ModelArgs {
                model: dir.clone(),
                provider: args.provider,
                device: None,
                allow_cpu_fallback: true,
            };
            engine_policy(&model, config.mode, config, &mut settings)?
        }
        None => {
            settings.mouse_scale = args.mouse_scale;
            settings.history_frames = 1;
            Box::new(ExpertPolicy {
                world,
                expert: Expert::new(args.mouse_scale),
                pending: Action::IDLE,
                scale: args.mouse_scale,
                state: Arc::clone(&arena.state),
            })
        }
    };
    let spec = WindowSpec::parse(&format!("{window:#x}"));
    let w = live::open(display, &spec, None)
        .with_context(|| format!("cannot open the arena window {window:#x}"))?;
    let runtime = Runtime::start(
        RuntimeParts {
            frames: w.frames,
            sink: w.sink,
            focus: Some(w.focus),
            monitor: w.monitor,
            policy,
            record: None,
        },
        settings,
    )?;
    let start = Instant::now();
    let commands = runtime.commands();
    let mut success_s = None;
    loop {
        if runtime.is_finished() {
            break;
        }
        if latest(&arena.state).is_some_and(|s| s.success) {
            success_s = Some(start.elapsed().as_secs_f64());
            let _ = commands.send(Command::Stop);
            break;
        }
        if start.elapsed().as_secs_f64() > args.timeout {
            let _ = commands.send(Command::Stop);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let summary = runtime.wait();
    let distance_end = distance(latest(&arena.state));
    drop(arena);
    Ok(EpisodeResult {
        success_s,
        distance_start,
        distance_end,
        deadline_misses: summary.executor.deadline_misses,
        chunks_played: summary.executor.chunks_played,
    })
}
