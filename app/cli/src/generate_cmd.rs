//! `lumine generate`: one prompt through the model, tokens streamed or as JSON.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use lumine_engine::chat::Message;
use lumine_engine::generate::{self, GenerateOptions};
use lumine_engine::provider::{ExecutionProvider, ProviderOptions};
use lumine_engine::sampler::Sampling;
use lumine_engine::{CancelToken, Model, image_io};
use serde::Serialize;

/// Where to run the model (overrides the configuration file).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProviderArg {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// NVIDIA CUDA.
    Cuda,
    /// NVIDIA TensorRT.
    Tensorrt,
}

/// Model and execution-provider options shared by the commands that run a model.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model directory (holding manifest.ron).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Execution provider; the configuration file's choice if omitted.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// GPU device id; the first of the configuration's `devices` if omitted.
    #[arg(long)]
    pub device: Option<u32>,
    /// Run on the CPU if the GPU provider cannot start.
    #[arg(long)]
    pub allow_cpu_fallback: bool,
}

impl ModelArgs {
    /// Opens the model with the options from the flags and the configuration.
    pub fn open(&self, config: &lumine_config::Config) -> anyhow::Result<Model> {
        let options = ProviderOptions {
            provider: match self.provider {
                Some(ProviderArg::Cpu) => ExecutionProvider::Cpu,
                Some(ProviderArg::Cuda) => ExecutionProvider::Cuda,
                Some(ProviderArg::Tensorrt) => ExecutionProvider::TensorRt,
                None => config.execution_provider,
            },
            device_id: self
                .device
                .or_else(|| config.devices.first().copied())
                .unwrap_or(0),
            allow_cpu_fallback: self.allow_cpu_fallback || config.allow_cpu_fallback,
            ..ProviderOptions::default()
        };
        Model::load(&self.model, &options, config.onnxruntime_library.as_deref())
            .with_context(|| format!("cannot open the model in {}", self.model.display()))
    }
}

/// Arguments of `lumine generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Chat messages, OpenAI style: content parts `{"type":"text","text":..}` or
    /// `{"type":"image","path":..}` (paths relative to this file).
    #[arg(long, value_name = "FILE.json")]
    messages: PathBuf,
    /// Upper bound on new tokens.
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// Greedy decoding (the default).
    #[arg(long, conflicts_with_all = ["temperature", "top_p", "seed"])]
    greedy: bool,
    /// Sampling temperature (enables sampling).
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus mass for sampling.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Report the first step's K largest logits.
    #[arg(long, default_value_t = 10)]
    top_logits: usize,
    /// Produce exactly --max-new-tokens tokens, ignoring <|action_end|> and <|im_end|>.
    #[arg(long)]
    no_stop: bool,
    /// Print one JSON object instead of streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Timings {
    preprocess: f64,
    vision: f64,
    prefill: f64,
    decode_per_token: Vec<f64>,
}

#[derive(Serialize)]
struct Report<'a> {
    input_ids: &'a [u32],
    image_grid_thw: &'a [[i64; 3]],
    position_ids: &'a [Vec<i64>; 3],
    rope_deltas: i64,
    top_logits: &'a [(u32, f32)],
    token_ids: &'a [u32],
    text: &'a str,
    timings_ms: Timings,
}

/// Runs `lumine generate`.
pub fn run(args: &GenerateArgs, config: &lumine_config::Config) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.messages)
        .with_context(|| format!("cannot read {}", args.messages.display()))?;
    let messages: Vec<Message> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a list of chat messages", args.messages.display()))?;
    let base = args.messages.parent().unwrap_or(Path::new("."));
    let images = lumine_engine::chat::image_paths(&messages)
        .iter()
        .map(|p| image_io::load_rgb(&base.join(p)))
        .collect::<Result<Vec<_>, _>>()?;
    if args.temperature.is_some_and(|t| t <= 0.0) || !(args.top_p > 0.0 && args.top_p <= 1.0) {
        anyhow::bail!("--temperature must be > 0 and --top-p in (0, 1]");
    }

    let mut model = args.model.open(config)?;
    let prompt = generate::build_prompt(&mut model, &messages, &images)?;
    let mut options = GenerateOptions::greedy(&model, args.max_new_tokens);
    options.top_logits = args.top_logits;
    if args.no_stop {
        options.stop_tokens.clear();
    }
    if let Some(temperature) = args.temperature {
        options.sampling = Sampling::TopP {
            temperature,
            top_p: args.top_p,
            seed: args.seed,
        };
    }

    let cancel = CancelToken::default();
    let mut stdout = std::io::stdout().lock();
    let json = args.json;
    let generation =
        generate::generate(&mut model, &prompt, &options, &cancel, &mut |_, piece| {
            if !json {
                // Streaming to a closed pipe is not worth failing the generation for.
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
            }
        })?;
    let t = &generation.timings;
    if json {
        let report = Report {
            input_ids: &generation.input_ids,
            image_grid_thw: &generation.image_grid_thw,
            position_ids: &generation.positions.rows,
            rope_deltas: generation.positions.rope_delta,
            top_logits: &generation.first_step_top,
            token_ids: &generation.tokens,
            text: &generation.text,
            timings_ms: Timings {
                preprocess: t.preprocess_ms,
                vision: t.vision_ms,
                prefill: t.prefill_ms,
                decode_per_token: t.decode_ms.clone(),
            },
        };
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(stdout)?;
        let decode_mean = t.decode_ms.iter().sum::<f64>() / t.decode_ms.len().max(1) as f64;
        eprintln!(
            "{} prompt tokens, {} new; preprocess {:.1} ms, vision {:.1} ms, prefill {:.1} ms, decode {decode_mean:.2} ms/token ({})",
            generation.input_ids.len(),
            generation.tokens.len(),
            t.preprocess_ms,
            t.vision_ms,
            t.prefill_ms,
            model.provider
        );
    }
    Ok(ExitCode::SUCCESS)
}
