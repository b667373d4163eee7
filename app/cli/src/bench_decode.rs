//! `lumine bench decode`: real-time decoding on a synthetic game (the measuring is
//! `lumine_engine::bench`; this is argument parsing and printing).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use lumine_engine::bench::{self, BenchConfig};

use crate::generate_cmd::ModelArgs;

/// Arguments of `lumine bench decode`.
#[derive(Debug, Args)]
pub struct BenchDecodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// History lengths to measure (steps kept in the context window).
    #[arg(long, value_delimiter = ',', default_value = "1,10,20")]
    history: Vec<usize>,
    /// Steps per run (use more than the largest history to reach eviction).
    #[arg(long, default_value_t = 24)]
    steps: usize,
    /// Frame size fed to the model, WIDTHxHEIGHT; the manifest's frame size if omitted.
    #[arg(long, value_name = "WxH", value_parser = parse_frame)]
    frame: Option<(u32, u32)>,
    /// Most draft tokens verified with each chosen token.
    #[arg(long, default_value_t = 16)]
    max_draft_tokens: usize,
    /// Seed of the scripted actions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_frame(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let parse = |s: &str| s.trim().parse::<u32>().ok().filter(|&v| v > 0);
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(format!(
            "{text:?} is not WIDTHxHEIGHT with positive integers"
        )),
    }
}

/// Runs `lumine bench decode`.
pub fn run(args: &BenchDecodeArgs, config: &lumine_config::Config) -> anyhow::Result<ExitCode> {
    if args.history.is_empty() || args.history.contains(&0) || args.steps == 0 {
        anyhow::bail!("--history needs positive lengths and --steps a positive count");
    }
    let mut model = args.model.open(config)?;
    let frame = args
        .frame
        .unwrap_or((model.manifest.frame.width, model.manifest.frame.height));
    let bench_config = BenchConfig {
        histories: args.history.clone(),
        steps: args.steps,
        frame,
        max_draft_tokens: args.max_draft_tokens,
        seed: args.seed,
    };
    let report = bench::run_bench(&mut model, &bench_config, &mut |stage| eprintln!("{stage}"))?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{json}\n"))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.to_table());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_parse() {
        assert_eq!(parse_frame("448x252"), Ok((448, 252)));
        assert_eq!(parse_frame("1280X720"), Ok((1280, 720)));
        assert!(parse_frame("448").is_err());
        assert!(parse_frame("0x10").is_err());
    }
}
