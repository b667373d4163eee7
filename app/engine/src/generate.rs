//! One generation: prompt in, tokens out, streamed as they are produced.
//!
//! Prefill embeds the prompt, replaces the `<|image_pad|>` rows with the vision
//! encoder's features (in order, one image per encoder call), computes M-RoPE
//! positions, and runs the decoder once; decoding then feeds one token at a time
//! at position `cache_len + rope_delta` on all three rows (`../shared/QWEN2VL.md` §5).

use std::time::Instant;

use lumine_vision::{PixelValues, RgbImage};

use crate::chat::{self, Message};
use crate::constrained::TokenGrammar;
use crate::error::EngineError;
use crate::kv_cache::KvCache;
use crate::model::{CancelToken, Model};
use crate::rope::{self, RopePositions};
use crate::sampler::{self, Sampler, Sampling};
use crate::speculative::{
    self, DecodedTurn, Proposer, TokenModel, TurnContext, TurnOptions, TurnSampler,
};
use crate::tokenizer::StreamDecoder;

/// A tokenised prompt with its preprocessed images.
#[derive(Debug, Clone)]
pub struct Prompt {
    /// Token ids, image placeholders expanded.
    pub input_ids: Vec<u32>,
    /// Preprocessed images in prompt order.
    pub images: Vec<PixelValues>,
    /// Time spent preprocessing the images, milliseconds.
    pub preprocess_ms: f64,
    /// A caller's id for each image, if it has one: images with an id are
    /// encoded once and their features reused ([`Model::encode_image_cached`]).
    /// [`build_prompt`] leaves them all `None`.
    pub image_ids: Vec<Option<u64>>,
}

impl Prompt {
    /// Each image's `[t, h, w]` grid in patches.
    pub fn image_grid_thw(&self) -> Vec<[i64; 3]> {
        self.images.iter().map(|p| p.grid_thw).collect()
    }
}

/// Renders `messages` with the chat template, preprocesses `images` (one per image
/// part, in order) and tokenises the result.
pub fn build_prompt(
    model: &mut Model,
    messages: &[Message],
    images: &[RgbImage],
) -> Result<Prompt, EngineError> {
    let start = Instant::now();
    let pixels = images
        .iter()
        .map(|image| model.preprocess(image.as_ref_image()))
        .collect::<Result<Vec<_>, _>>()?;
    let preprocess_ms = start.elapsed().as_secs_f64() * 1e3;
    let rendered = chat::render(messages);
    let counts: Vec<usize> = pixels.iter().map(PixelValues::num_image_tokens).collect();
    let expanded = chat::expand_image_pads(&rendered, &counts).ok_or_else(|| {
        EngineError::Input(format!(
            "the messages have a different number of image parts than the {} images given",
            images.len()
        ))
    })?;
    Ok(Prompt {
        input_ids: model.tokenizer.encode(&expanded)?,
        image_ids: vec![None; pixels.len()],
        images: pixels,
        preprocess_ms,
    })
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Upper bound on new tokens.
    pub max_new_tokens: usize,
    /// Greedy or sampled.
    pub sampling: Sampling,
    /// Generation stops after producing one of these (it is included in the output).
    pub stop_tokens: Vec<u32>,
    /// How many of the first step's largest logits to report.
    pub top_logits: usize,
}

impl GenerateOptions {
    /// Greedy decoding of up to `max_new_tokens`, stopping at `<|action_end|>` or
    /// `<|im_end|>` as the agent does.
    pub fn greedy(model: &Model, max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_tokens: vec![
                model.manifest.tokens.action_end,
                model.manifest.tokens.im_end,
            ],
            top_logits: 0,
        }
    }
}

/// Per-stage wall-clock timings of one generation, milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    /// Image preprocessing.
    pub preprocess_ms: f64,
    /// Vision encoder, all images.
    pub vision_ms: f64,
    /// Prompt embedding and the prefill forward pass.
    pub prefill_ms: f64,
    /// Each decode step (embedding, forward pass, sampling).
    pub decode_ms: Vec<f64>,
}

/// Everything one generation produced.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The prompt's token ids.
    pub input_ids: Vec<u32>,
    /// Image grids `[t, h, w]`.
    pub image_grid_thw: Vec<[i64; 3]>,
    /// Prefill M-RoPE positions and rope delta.
    pub positions: RopePositions,
    /// The first step's largest logits, (id, logit).
    pub first_step_top: Vec<(u32, f32)>,
    /// The new tokens.
    pub tokens: Vec<u32>,
    /// The new tokens as text (special tokens included).
    pub text: String,
    /// Timings.
    pub timings: StageTimings,
}

/// Generates from `prompt`, calling `on_text` with each complete piece of text as
/// soon as its token is chosen.
pub fn generate(
    model: &mut Model,
    prompt: &Prompt,
    options: &GenerateOptions,
    cancel: &CancelToken,
    on_text: &mut dyn FnMut(u32, &str),
) -> Result<Generation, EngineError> {
    let Prefilled {
        mut cache,
        positions,
        mut last,
        mut timings,
    } = prefill(model, prompt, cancel)?;
    let grids = prompt.image_grid_thw();

    let first_step_top = sampler::top_k(&last, options.top_logits);
    let mut sampler = Sampler::new(options.sampling);
    let mut stream = StreamDecoder::default();
    let mut tokens = Vec::new();
    while tokens.len() < options.max_new_tokens {
        let step_start = Instant::now();
        let token = sampler.sample(&last);
        tokens.push(token);
        let piece = stream.push(&model.tokenizer, token)?;
        on_text(token, &piece);
        if options.stop_tokens.contains(&token) || tokens.len() == options.max_new_tokens {
            timings
                .decode_ms
                .push(step_start.elapsed().as_secs_f64() * 1e3);
            break;
        }
        let position = rope::decode_position(cache.len(), positions.rope_delta);
        let embed = model.embed_tokens(&[token])?;
        last = model.forward(
            embed,
            [&[position], &[position], &[position]],
            &mut cache,
            cancel,
        )?;
        timings
            .decode_ms
            .push(step_start.elapsed().as_secs_f64() * 1e3);
    }
    let rest = stream.finish(&model.tokenizer)?;
    if let (false, Some(&last)) = (rest.is_empty(), tokens.last()) {
        on_text(last, &rest);
    }
    let text = model.tokenizer.decode(&tokens)?;
    Ok(Generation {
        input_ids: prompt.input_ids.clone(),
        image_grid_thw: grids,
        positions,
        first_step_top,
        tokens,
        text,
        timings,
    })
}

/// A prompt run through the decoder: its KV cache, positions and the logits that
/// predict the first new token.
#[derive(Debug)]
pub struct Prefilled {
    /// Keys and values of every prompt token.
    pub cache: KvCache,
    /// Prefill M-RoPE positions and rope delta.
    pub positions: RopePositions,
    /// Logits after the last prompt token, `[vocab]`.
    pub last: Vec<f32>,
    /// Preprocess, vision and prefill timings (no decode yet).
    pub timings: StageTimings,
}

/// Encodes the prompt's images (one encoder call per image: attention never crosses
/// images), scatters their features into the token embeddings, computes M-RoPE
/// positions and runs the prefill pass.
pub fn prefill(
    model: &mut Model,
    prompt: &Prompt,
    cancel: &CancelToken,
) -> Result<Prefilled, EngineError> {
    let mut timings = StageTimings {
        preprocess_ms: prompt.preprocess_ms,
        ..StageTimings::default()
    };
    let hidden = model.hidden_size();
    let image_token = model.manifest.tokens.image_pad;

    let start = Instant::now();
    let mut features: Vec<std::sync::Arc<[f32]>> = Vec::with_capacity(prompt.images.len());
    for (i, image) in prompt.images.iter().enumerate() {
        features.push(match prompt.image_ids.get(i).copied().flatten() {
            Some(id) => model.encode_image_cached(id, image, cancel)?,
            None => model.encode_image(image, cancel)?.into(),
        });
    }
    timings.vision_ms = start.elapsed().as_secs_f64() * 1e3;

    let start = Instant::now();
    let grids = prompt.image_grid_thw();
    let merge = i64::from(model.manifest.vision.spatial_merge_size);
    let positions = rope::rope_positions(&prompt.input_ids, image_token, &grids, merge)?;
    let mut embeds = model.embed_tokens(&prompt.input_ids)?;
    scatter_image_features(
        &mut embeds,
        &prompt.input_ids,
        image_token,
        &features,
        hidden,
    )?;
    let mut cache = model.new_cache()?;
    let logits = model.forward(
        embeds,
        [&positions.rows[0], &positions.rows[1], &positions.rows[2]],
        &mut cache,
        cancel,
    )?;
    let vocab = logits.len() / prompt.input_ids.len().max(1);
    let last = logits[logits.len() - vocab..].to_vec();
    timings.prefill_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(Prefilled {
        cache,
        positions,
        last,
        timings,
    })
}

/// Feeds tokens after a prefilled prompt at `cache_len + rope_delta`, and rolls
/// back rejected drafts by truncating the cache.
struct PromptModel<'a> {
    model: &'a mut Model,
    cache: &'a mut KvCache,
    rope_delta: i64,
    cancel: &'a CancelToken,
}

impl TokenModel for PromptModel<'_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>, EngineError> {
        let embeds = self.model.embed_tokens(tokens)?;
        let first = self.cache.len();
        let positions: Vec<i64> = (0..tokens.len())
            .map(|k| rope::decode_position(first + k, self.rope_delta))
            .collect();
        self.model.forward(
            embeds,
            [&positions, &positions, &positions],
            self.cache,
            self.cancel,
        )
    }

    fn rollback(&mut self, n: usize) -> Result<(), EngineError> {
        let len = self.cache.len().saturating_sub(n);
        self.cache.truncate(len)
    }
}

/// Decodes one turn after `prompt` under the action grammar, with draft-free
/// speculation: every turn it returns parses, and each stream event (mouse, chunk,
/// end) is reported the moment its last token is accepted.
///
/// For callers that rebuild the prompt every step; [`crate::session::AgentSession`]
/// also keeps the KV cache from step to step.
#[allow(clippy::too_many_arguments)] // each argument is one independent input of the decode
pub fn constrained_turn(
    model: &mut Model,
    prompt: &Prompt,
    grammar: &mut TokenGrammar,
    context: &TurnContext,
    options: &TurnOptions,
    sampler: &mut TurnSampler,
    cancel: &CancelToken,
    on_event: &mut dyn FnMut(&lumine_action::StreamEvent),
) -> Result<(DecodedTurn, StageTimings), EngineError> {
    let Prefilled {
        mut cache,
        positions,
        last,
        mut timings,
    } = prefill(model, prompt, cancel)?;
    let tokenizer = model.tokenizer.clone();
    let keys = model.keys.clone();
    let proposer = Proposer::new(&tokenizer, &keys);
    let start = Instant::now();
    let mut adapter = PromptModel {
        model,
        cache: &mut cache,
        rope_delta: positions.rope_delta,
        cancel,
    };
    let turn = speculative::decode_turn(
        &mut adapter,
        grammar,
        (options.max_draft_tokens > 0).then_some(&proposer),
        context,
        &last,
        options,
        sampler,
        on_event,
    )?;
    timings.decode_ms.push(start.elapsed().as_secs_f64() * 1e3);
    Ok((turn, timings))
}

/// Replaces the embedding rows of image tokens with the images' features, in order.
fn scatter_image_features(
    embeds: &mut [f32],
    ids: &[u32],
    image_token: u32,
    features: &[impl AsRef<[f32]>],
    hidden: usize,
) -> Result<(), EngineError> {
    let mut rows = features
        .iter()
        .flat_map(|f| f.as_ref().chunks_exact(hidden));
    let slots = ids.iter().filter(|&&id| id == image_token).count();
    let available: usize = features.iter().map(|f| f.as_ref().len() / hidden).sum();
    if slots != available {
        return Err(EngineError::Input(format!(
            "the prompt has {slots} image tokens but the images gave {available} features"
        )));
    }
    for (i, _) in ids.iter().enumerate().filter(|&(_, &id)| id == image_token) {
        if let Some(row) = rows.next() {
            embeds[i * hidden..(i + 1) * hidden].copy_from_slice(row);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_replace_image_rows_in_order() {
        let ids = [1, 9, 9, 2, 9];
        let mut embeds = vec![0.0; ids.len() * 2];
        let features = vec![vec![1.0, 1.5, 2.0, 2.5], vec![3.0, 3.5]];
        scatter_image_features(&mut embeds, &ids, 9, &features, 2).unwrap();
        assert_eq!(
            embeds,
            vec![0.0, 0.0, 1.0, 1.5, 2.0, 2.5, 0.0, 0.0, 3.0, 3.5]
        );
        let err = scatter_image_features(&mut embeds, &ids, 9, &features[..1], 2).unwrap_err();
        assert!(err.to_string().contains("3 image tokens"), "{err}");
    }
}
