//! `lumine config ...`: where the configuration is and what it says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the path of the configuration file.
    Path,
    /// Print the effective configuration (creating the file with defaults on first use).
    Show,
    /// Check a configuration file and report the first problem with its line.
    Check {
        /// File to check; the active configuration file if omitted.
        file: Option<PathBuf>,
    },
}

/// Runs a configuration subcommand.
pub fn run(cmd: &ConfigCommand, explicit: Option<&Path>) -> anyhow::Result<ExitCode> {
    let active = crate::config_path(explicit)?;
    match cmd {
        ConfigCommand::Path => println!("{}", active.display()),
        ConfigCommand::Show => {
            let config = lumine_config::load_or_create(&active)?;
            println!("// {}", active.display());
            println!("{}", config.to_ron());
        }
        ConfigCommand::Check { file } => {
            let path = file.as_deref().unwrap_or(&active);
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if let Err(err) = lumine_config::Config::from_ron(&text, path) {
                eprintln!("{err}");
                return Ok(ExitCode::from(2));
            }
            println!("{}: ok", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
