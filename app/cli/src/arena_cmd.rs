//! `lumine arena`: the practice arena window, and `lumine arena demos`: the
//! scripted expert's demonstrations, written as trajectories.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use lumine_arena::TaskKind;

use crate::run_cmd::parse_size;

/// Arguments of `lumine arena`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ArenaArgs {
    #[command(subcommand)]
    command: Option<ArenaCommand>,
    #[command(flatten)]
    window: ArenaWindowArgs,
}

/// Subcommands of `lumine arena`.
#[derive(Debug, Subcommand)]
enum ArenaCommand {
    /// Write the scripted expert's demonstrations (trajectories, the format of
    /// `lumine record`), headless and faster than real time. Exits 3 when
    /// the expert did not finish some episodes (they are not written).
    Demos(crate::arena_demos::DemosArgs),
}

/// Options of the arena window.
#[derive(Debug, Args)]
pub struct ArenaWindowArgs {
    /// Layout seed (default: from the clock, printed on standard error).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Task kind: chest, crystals, guard, door, key-door, crystal-chest
    /// (default: drawn from the seed).
    #[arg(long, value_name = "NAME", value_parser = parse_task)]
    task: Option<TaskKind>,
    /// Window size.
    #[arg(long, value_name = "WxH", value_parser = parse_size, default_value = "640x360")]
    size: (u32, u32),
    /// Write the state (for evaluation only) as JSON lines to FILE, or `-` for
    /// standard output.
    #[arg(long, value_name = "FILE|-")]
    state_out: Option<String>,
    /// Window title.
    #[arg(long, value_name = "TITLE", default_value = "Lumine Arena")]
    title: String,
    /// X display (default: $DISPLAY).
    #[arg(long, value_name = ":N")]
    display: Option<String>,
    /// Frames per second.
    #[arg(long, value_name = "N", default_value_t = 30)]
    fps: u32,
    /// Close the window after this many seconds.
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
}

/// Parses a task kind name.
pub fn parse_task(text: &str) -> Result<TaskKind, String> {
    TaskKind::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
        format!("{text:?} is not a task kind ({})", names.join(", "))
    })
}

/// Runs `lumine arena`.
pub fn run(args: &ArenaArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        Some(ArenaCommand::Demos(d)) => crate::arena_demos::run(d),
        None => run_window(&args.window),
    }
}

#[cfg(target_os = "linux")]
fn run_window(args: &ArenaWindowArgs) -> anyhow::Result<ExitCode> {
    use lumine_arena::window::{self, StateOut, WindowOptions};
    let seed = args.seed.unwrap_or_else(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        eprintln!("seed {seed}");
        seed
    });
    let (w, h) = args.size;
    let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
        bail!("--size {w}x{h} is larger than X allows");
    };
    let options = WindowOptions {
        display: args.display.clone(),
        seed,
        task: args.task,
        size: (w, h),
        title: args.title.clone(),
        state_out: args.state_out.as_deref().map(|s| match s {
            "-" => StateOut::Stdout,
            path => StateOut::File(PathBuf::from(path)),
        }),
        fps: args.fps,
        max_seconds: args.seconds,
    };
    let state = window::run(&options).context("arena window")?;
    eprintln!(
        "{}: {}",
        state.task,
        if state.success { "done" } else { "not done" }
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(target_os = "linux"))]
fn run_window(_args: &ArenaWindowArgs) -> anyhow::Result<ExitCode> {
    bail!("the arena window is X11 only so far (Linux); `lumine arena demos` runs anywhere")
}
