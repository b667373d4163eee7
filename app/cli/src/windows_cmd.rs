//! `lumine windows`: the windows the agent could play.

use std::process::ExitCode;

use clap::Args;
use lumine_runtime::live;

/// Arguments of `lumine windows`.
#[derive(Debug, Args)]
pub struct WindowsArgs {
    /// X display (default: $DISPLAY).
    #[arg(long, value_name = ":N")]
    display: Option<String>,
}

/// Runs `lumine windows`: one line per window, id first (usable as `--window`).
pub fn run(args: &WindowsArgs) -> anyhow::Result<ExitCode> {
    let mut windows = live::window_system(args.display.as_deref())?;
    let focused = windows.focused().ok().flatten();
    for w in windows.windows()? {
        let mut flags = Vec::new();
        if Some(w.id) == focused {
            flags.push("focused");
        }
        if w.minimized {
            flags.push("minimised");
        }
        println!(
            "{:#010x}  {:>5}x{:<5} at {:>5},{:<5} {:<10} {}",
            w.id.0,
            w.width,
            w.height,
            w.x,
            w.y,
            flags.join(","),
            w.title
        );
    }
    Ok(ExitCode::SUCCESS)
}
