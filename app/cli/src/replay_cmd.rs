//! `lumine replay`: plays a recorded trajectory's actions into a window.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use lumine_config::Config;
use lumine_runtime::live;
use lumine_runtime::policy::ReplayPolicy;
use lumine_runtime::trajectory::Trajectory;
use lumine_runtime::{DenyList, Runtime, RuntimeConfig, RuntimeParts, key_from_name};

use crate::run_cmd::{WindowArgs, load_keys, parse_pair_f32, report, window_spec};

/// Arguments of `lumine replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The trajectory folder (from `lumine record` or `lumine run --record`).
    dir: PathBuf,
    #[command(flatten)]
    target: WindowArgs,
    /// No input monitor: no operator takeover and no emergency hotkey.
    #[arg(long)]
    no_monitor: bool,
    /// Stop after this many steps.
    #[arg(long, value_name = "N")]
    steps: Option<u64>,
    /// Key names of the trajectory's actions (RON; default: the built-in names).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Pixels per unit of DX,DY (default: the trajectory's).
    #[arg(long, value_name = "X,Y", value_parser = parse_pair_f32)]
    mouse_scale: Option<(f32, f32)>,
    /// Print only the summary.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `lumine replay`.
pub fn run(args: &ReplayArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let vocab = load_keys(args.keys.as_deref())?;
    let meta = Trajectory::open(&args.dir)?.meta;
    let policy = ReplayPolicy::open(&args.dir, &vocab)?;
    eprintln!(
        "replaying {} steps from {}",
        policy.len(),
        args.dir.display()
    );
    let mut settings = RuntimeConfig::new(vocab);
    settings.mouse_scale = args
        .mouse_scale
        .unwrap_or((meta.mouse_scale[0], meta.mouse_scale[1]));
    settings.max_steps = args.steps;
    settings.deny_list = DenyList::parse(&config.deny_list)?;
    settings.takeover_idle = Duration::from_millis(config.takeover_idle_ms);
    settings.history_frames = 1;
    let spec = window_spec(&args.target, config)?;
    let emergency = if args.no_monitor {
        None
    } else {
        key_from_name(&config.emergency_stop_key)
    };
    let w = live::open(args.target.display.as_deref(), &spec, emergency)?;
    eprintln!("window {:#x} {:?}", w.info.id.0, w.info.title);
    let runtime = Runtime::start(
        RuntimeParts {
            frames: w.frames,
            sink: w.sink,
            focus: Some(w.focus),
            monitor: w.monitor,
            policy: Box::new(policy),
            record: None,
        },
        settings,
    )?;
    runtime.install_signal_handlers()?;
    Ok(report(runtime, args.quiet))
}
