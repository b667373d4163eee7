//! `lumine`: the Lumine Console command line.
//!
//! Thin by design: argument parsing and wiring only; every feature lives in a
//! library crate under `app/` (see ARCHITECTURE.md).

mod action_cmd;
mod arena_cmd;
mod arena_demos;
mod bench_cmd;
mod bench_decode;
mod config_cmd;
mod console_cmd;
mod doctor_cmd;
mod eval_cmd;
mod generate_cmd;
mod model_cmd;
mod record_cmd;
mod replay_cmd;
mod run_cmd;
mod windows_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lumine Console: run a real-time game-playing agent through screen, keyboard and mouse.
#[derive(Debug, Parser)]
#[command(name = "lumine", version, about, long_about = None)]
struct Cli {
    /// Configuration file to use instead of the platform default (also: $LUMINE_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The practice arena: a small first-person world in an X11 window, and
    /// the scripted expert's demonstrations (`lumine arena demos`).
    Arena(arena_cmd::ArenaArgs),
    /// Measure preprocessing and model throughput (figures for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
    /// Work with action strings in the model's action language.
    #[command(subcommand)]
    Action(action_cmd::ActionCommand),
    /// Show or check the configuration file.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Open the operator console (also what `lumine` alone does).
    Console(console_cmd::ConsoleArgs),
    /// Report what this machine offers: ONNX Runtime library and version, execution
    /// providers, display, configuration.
    Doctor,
    /// Evaluate an agent: success rate and completion time on practice-arena
    /// tasks, in real time through the real path.
    #[command(subcommand)]
    Eval(eval_cmd::EvalCommand),
    /// Run one prompt through a model: tokens streamed, or a JSON report with
    /// positions, logits and per-stage timings.
    Generate(generate_cmd::GenerateArgs),
    /// Inspect model directories.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// Record a human demonstration of a window as action strings.
    Record(record_cmd::RecordArgs),
    /// Play a recorded trajectory's actions into a window.
    Replay(replay_cmd::ReplayArgs),
    /// Run the agent headless on a window: a model, a script or a replay.
    Run(run_cmd::RunArgs),
    /// List the windows the agent could play.
    Windows(windows_cmd::WindowsArgs),
}

/// The configuration file: `--config`, else `$LUMINE_CONFIG`, else the platform default.
fn config_path(explicit: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(path) => Ok(path.to_owned()),
        None => Ok(lumine_config::default_path()?),
    }
}

/// The configuration, created with defaults on first use.
fn load_config(explicit: Option<&std::path::Path>) -> anyhow::Result<lumine_config::Config> {
    Ok(lumine_config::load_or_create(&config_path(explicit)?)?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Action(cmd)) => action_cmd::run(&cmd),
        Some(Command::Arena(args)) => arena_cmd::run(&args),
        Some(Command::Eval(cmd)) => {
            load_config(cli.config.as_deref()).and_then(|c| eval_cmd::run(&cmd, &c))
        }
        Some(Command::Config(cmd)) => config_cmd::run(&cmd, cli.config.as_deref()),
        Some(Command::Doctor) => {
            config_path(cli.config.as_deref()).and_then(|p| doctor_cmd::run(&p))
        }
        Some(Command::Generate(args)) => {
            load_config(cli.config.as_deref()).and_then(|c| generate_cmd::run(&args, &c))
        }
        Some(Command::Bench(cmd)) => {
            load_config(cli.config.as_deref()).and_then(|c| bench_cmd::run(&cmd, &c))
        }
        Some(Command::Model(cmd)) => {
            load_config(cli.config.as_deref()).and_then(|c| model_cmd::run(&cmd, &c))
        }
        Some(Command::Record(args)) => {
            load_config(cli.config.as_deref()).and_then(|c| record_cmd::run(&args, &c))
        }
        Some(Command::Replay(args)) => {
            load_config(cli.config.as_deref()).and_then(|c| replay_cmd::run(&args, &c))
        }
        Some(Command::Run(args)) => {
            load_config(cli.config.as_deref()).and_then(|c| run_cmd::run(&args, &c))
        }
        Some(Command::Windows(args)) => windows_cmd::run(&args),
        Some(Command::Console(args)) => {
            load_config(cli.config.as_deref()).and_then(|c| console_cmd::run(&args, c))
        }
        None => load_config(cli.config.as_deref())
            .and_then(|c| console_cmd::run(&console_cmd::ConsoleArgs::default_args(), c)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
