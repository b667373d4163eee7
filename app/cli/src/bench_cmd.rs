//! `lumine bench ...`: measured figures for BENCHMARKS.md (median of repeated runs).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use lumine_engine::CancelToken;
use lumine_engine::chat::{Content, ContentPart, Message};
use lumine_engine::generate::{self, GenerateOptions};
use lumine_vision::{PixelValues, PreprocessConfig, Preprocessor, RgbImage};
use serde::Serialize;

use crate::generate_cmd::ModelArgs;

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Qwen2-VL image preprocessing (resize, normalise, patchify) of one frame.
    Preprocess(PreprocessArgs),
    /// Prefill and decode throughput of a model.
    Tokens(TokensArgs),
    /// Real-time decoding: KV reuse, speculative decoding, chunk latency, on synthetic frames.
    Decode(crate::bench_decode::BenchDecodeArgs),
}

/// Arguments of `lumine bench preprocess`.
#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// Image file to preprocess; a synthetic frame of --size if omitted.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Size of the synthetic frame, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    size: (u32, u32),
    /// Timed repetitions (after 3 warm-up runs).
    #[arg(long, default_value_t = 50)]
    iterations: usize,
    /// Threads per frame (`Preprocessor::with_threads`); 2 as in the engine.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Force the portable code instead of the AVX2 kernels (for comparison).
    #[arg(long)]
    portable: bool,
    /// Write transformers' layout (the still frame twice per patch, 1176
    /// columns) instead of the one copy that exported models take (588).
    #[arg(long)]
    unfolded: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `lumine bench tokens`.
#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Synthetic frame size fed with the prompt, WIDTHxHEIGHT.
    #[arg(long, default_value = "448x252", value_parser = parse_size)]
    frame: (u32, u32),
    /// Tokens to decode per run.
    #[arg(long, default_value_t = 32)]
    new_tokens: usize,
    /// Timed runs (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once('x')
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT"))?;
    let w = w.parse().map_err(|_| format!("bad width in {text:?}"))?;
    let h = h.parse().map_err(|_| format!("bad height in {text:?}"))?;
    if w == 0 || h == 0 {
        return Err("width and height must be positive".to_owned());
    }
    Ok((w, h))
}

/// A deterministic frame with gradients and edges, so the resize does real work.
pub fn synthetic_frame(width: u32, height: u32, seed: u32) -> RgbImage {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let checker = if ((x / 37) + (y / 23) + seed).is_multiple_of(2) {
                60
            } else {
                0
            };
            data.push(((x * 255 / width.max(1)) as u8).wrapping_add(checker));
            data.push(((y * 255 / height.max(1)) as u8).wrapping_add(seed as u8 * 40));
            data.push((((x ^ y) & 0xff) as u8).wrapping_add(checker));
        }
    }
    RgbImage::new(width, height, data).unwrap_or_else(|_| RgbImage::zeroed(width, height))
}

/// Summary statistics of timings in milliseconds.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Fastest.
    pub min_ms: f64,
}

/// Median, p90 and minimum of `samples` (milliseconds).
pub fn stats(mut samples: Vec<f64>) -> Stats {
    samples.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let i = ((samples.len().saturating_sub(1)) as f64 * q).round() as usize;
        samples.get(i).copied().unwrap_or(f64::NAN)
    };
    Stats {
        n: samples.len(),
        median_ms: pick(0.5),
        p90_ms: pick(0.9),
        min_ms: samples.first().copied().unwrap_or(f64::NAN),
    }
}

/// Runs a benchmark.
pub fn run(cmd: &BenchCommand, config: &lumine_config::Config) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Preprocess(args) => preprocess(args),
        BenchCommand::Tokens(args) => tokens(args, config),
        BenchCommand::Decode(args) => crate::bench_decode::run(args, config),
    }
}

fn preprocess(args: &PreprocessArgs) -> anyhow::Result<ExitCode> {
    let image = match &args.image {
        Some(path) => lumine_engine::image_io::load_rgb(path)?,
        None => synthetic_frame(args.size.0, args.size.1, 0),
    };
    // Exported graphs fold the temporal kernel (manifest `temporal_folded`),
    // so the engine writes one copy of the frame per patch.
    let config = PreprocessConfig {
        temporal_patch_size: if args.unfolded { 2 } else { 1 },
        ..PreprocessConfig::default()
    };
    let mut preprocessor = Preprocessor::new(config)?
        .with_threads(args.threads)
        .with_simd(!args.portable);
    let mut samples = Vec::with_capacity(args.iterations);
    // The output buffer is reused, as a frame loop does.
    let mut pixels = PixelValues::default();
    for i in 0..args.iterations + 3 {
        let start = Instant::now();
        preprocessor.preprocess_into(&mut pixels, image.as_ref_image())?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if i >= 3 {
            samples.push(ms);
        }
    }
    let grid = pixels.grid_thw;
    let kernels = if preprocessor.uses_simd() {
        "avx2"
    } else {
        "portable"
    };
    let s = stats(samples);
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            width: u32,
            height: u32,
            grid_thw: [i64; 3],
            columns: usize,
            threads: usize,
            kernels: &'a str,
            stats: &'a Stats,
        }
        let out = Out {
            width: image.width,
            height: image.height,
            grid_thw: grid,
            columns: pixels.cols,
            threads: preprocessor.threads(),
            kernels,
            stats: &s,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "preprocess {}x{} -> grid {:?} x {} columns ({} threads, {kernels}): median {:.3} ms, p90 {:.3} ms, min {:.3} ms ({} runs)",
            image.width,
            image.height,
            grid,
            pixels.cols,
            preprocessor.threads(),
            s.median_ms,
            s.p90_ms,
            s.min_ms,
            s.n
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn tokens(args: &TokensArgs, config: &lumine_config::Config) -> anyhow::Result<ExitCode> {
    let mut model = args.model.open(config)?;
    let (w, h) = args.frame;
    let messages = vec![
        Message {
            role: "system".to_owned(),
            content: Content::Text(model.manifest.prompts.instruction.clone()),
        },
        Message {
            role: "user".to_owned(),
            content: Content::Parts(vec![
                ContentPart::Text {
                    text: "Open the red chest.".to_owned(),
                },
                ContentPart::Image {
                    path: "synthetic".into(),
                },
            ]),
        },
    ];
    let frame = synthetic_frame(w, h, 1);
    let prompt = generate::build_prompt(&mut model, &messages, std::slice::from_ref(&frame))
        .context("building the benchmark prompt")?;
    let mut options = GenerateOptions::greedy(&model, args.new_tokens);
    options.stop_tokens.clear();
    let cancel = CancelToken::default();
    let (mut vision, mut prefill, mut decode) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..=args.runs {
        let g = generate::generate(&mut model, &prompt, &options, &cancel, &mut |_, _| {})?;
        if run > 0 {
            vision.push(g.timings.vision_ms);
            prefill.push(g.timings.prefill_ms);
            decode.extend(g.timings.decode_ms.iter().copied());
        }
    }
    let prompt_tokens = prompt.input_ids.len();
    let (vision, prefill, decode) = (stats(vision), stats(prefill), stats(decode));
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            model: &'a str,
            provider: String,
            frame: (u32, u32),
            prompt_tokens: usize,
            vision: &'a Stats,
            prefill: &'a Stats,
            decode_per_token: &'a Stats,
            prefill_tokens_per_s: f64,
            decode_tokens_per_s: f64,
        }
        let out = Out {
            model: &model.manifest.name,
            provider: model.provider.to_string(),
            frame: args.frame,
            prompt_tokens,
            vision: &vision,
            prefill: &prefill,
            decode_per_token: &decode,
            prefill_tokens_per_s: prompt_tokens as f64 / (prefill.median_ms / 1e3),
            decode_tokens_per_s: 1e3 / decode.median_ms,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!(
            "{} on {} ({}x{} frame, {prompt_tokens} prompt tokens):",
            model.manifest.name, model.provider, w, h
        );
        println!("  vision encoder  median {:.2} ms", vision.median_ms);
        println!(
            "  prefill         median {:.2} ms ({:.0} tokens/s)",
            prefill.median_ms,
            prompt_tokens as f64 / (prefill.median_ms / 1e3)
        );
        println!(
            "  decode          median {:.3} ms/token, p90 {:.3} ({:.0} tokens/s)",
            decode.median_ms,
            decode.p90_ms,
            1e3 / decode.median_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
