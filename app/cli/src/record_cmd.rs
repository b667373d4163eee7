//! `lumine record`: a human demonstration of a window, recorded in the
//! model's own action language.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use lumine_config::Config;
use lumine_runtime::live;
use lumine_runtime::record::{DemoConfig, record_demonstration};
use lumine_runtime::trajectory::{TrajectoryMeta, TrajectorySource, TrajectoryWriter};
use lumine_runtime::{key_from_name, signals};

use crate::run_cmd::{WindowArgs, load_keys, parse_pair_f32, parse_size, window_spec};

/// Arguments of `lumine record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    target: WindowArgs,
    /// The new trajectory folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Stop after this many seconds (else Ctrl-C or the emergency-stop key).
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Take frame size, mouse scale and key names from this model's manifest.
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Key names (RON; default: the model's, else the built-in names).
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,
    /// Pixels per unit of DX,DY (default: the model's, else 1,1).
    #[arg(long, value_name = "X,Y", value_parser = parse_pair_f32)]
    mouse_scale: Option<(f32, f32)>,
    /// Frame size stored (default: the model's, else 1280x720).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    frame_size: Option<(u32, u32)>,
    /// The instruction the demonstration follows.
    #[arg(long, value_name = "TEXT")]
    instruction: Option<String>,
    /// Print only the summary.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `lumine record`.
pub fn run(args: &RecordArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let mut vocab = load_keys(args.keys.as_deref())?;
    let mut mouse_scale = (1.0, 1.0);
    let mut frame_size = (1280, 720);
    if let Some(dir) = &args.model {
        let manifest = lumine_engine::manifest::Manifest::load(dir)?;
        if args.keys.is_none() {
            vocab = load_keys(Some(&dir.join(&manifest.key_vocabulary)))?;
        }
        mouse_scale = (manifest.mouse_scale.x, manifest.mouse_scale.y);
        frame_size = (manifest.frame.width, manifest.frame.height);
    }
    let mouse_scale = args.mouse_scale.unwrap_or(mouse_scale);
    let frame_size = args.frame_size.unwrap_or(frame_size);
    let emergency = key_from_name(&config.emergency_stop_key).with_context(|| {
        format!(
            "emergency_stop_key {:?} is not a key name",
            config.emergency_stop_key
        )
    })?;
    let spec = window_spec(&args.target, config)?;
    let (info, mut frames, mut monitor) =
        live::open_for_recording(args.target.display.as_deref(), &spec, emergency)
            .with_context(|| format!("cannot open the window {spec:?}"))?;
    let mut meta = TrajectoryMeta::new(
        TrajectorySource::Demonstration,
        frame_size,
        [mouse_scale.0, mouse_scale.1],
    );
    meta.window = Some(info.title.clone());
    meta.instruction.clone_from(&args.instruction);
    let writer = TrajectoryWriter::create(&args.out, &meta, Instant::now())?;
    let stop = Arc::new(AtomicBool::new(false));
    signals::stop_on_signals(&stop, &stop)?;
    eprintln!(
        "recording window {:#x} {:?} into {} (stop: Ctrl-C or {})",
        info.id.0,
        info.title,
        args.out.display(),
        config.emergency_stop_key
    );
    let demo = DemoConfig {
        vocab,
        mouse_scale,
        frame_size: Some(frame_size),
        duration: args.seconds.map(Duration::from_secs_f64),
        instruction: args.instruction.clone(),
    };
    let quiet = args.quiet;
    let summary = record_demonstration(
        &mut frames,
        monitor.as_mut(),
        writer,
        &demo,
        &stop,
        &mut |step| {
            if !quiet {
                println!("step {:>5}  {}", step.step, step.action);
            }
        },
    )?;
    eprintln!(
        "recorded {} steps ({} without a frame){}",
        summary.steps,
        summary.missing_frames,
        if summary.dropped_keys.is_empty() {
            String::new()
        } else {
            format!(
                "; keys the action language cannot write: {:?}",
                summary.dropped_keys
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}
