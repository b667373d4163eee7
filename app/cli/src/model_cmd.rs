//! `lumine model ...`: inspect model directories.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

/// Model subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Check a model directory and report every problem found (exit 2 if any).
    Check {
        /// The model directory (holding manifest.ron).
        dir: PathBuf,
    },
}

/// Runs a model subcommand.
pub fn run(cmd: &ModelCommand, config: &lumine_config::Config) -> anyhow::Result<ExitCode> {
    let ModelCommand::Check { dir } = cmd;
    let problems =
        lumine_engine::check::check_model_dir(dir, config.onnxruntime_library.as_deref());
    if problems.is_empty() {
        println!("{}: ok", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        println!("{}: {problem}", dir.display());
    }
    Ok(ExitCode::from(2))
}
