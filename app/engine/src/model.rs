//! A model directory opened for inference: the three ONNX Runtime sessions, the
//! tokenizer, the preprocessor and the key vocabulary.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use lumine_action::KeyVocabulary;
use lumine_vision::{PixelValues, PreprocessConfig, Preprocessor, RgbImageRef};
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

use crate::constrained::VocabIndex;
use crate::error::EngineError;
use crate::kv_cache::KvCache;
use crate::manifest::Manifest;
use crate::ort_library;
use crate::partition::RankExecutor;
use crate::provider::{self, ProviderOptions};
use crate::rope::RopeTable;
use crate::tokenizer::Tokenizer;

/// Cancels a running generation from another thread (the console's Stop button).
///
/// Sets a flag checked between forward passes and terminates the ONNX Runtime run in
/// flight, so even a long prefill stops promptly.
#[derive(Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
    current: Arc<Mutex<Vec<Arc<RunOptions>>>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// Requests cancellation.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(current) = self.current.lock() {
            for run in current.iter() {
                // Best effort: the flag alone stops the run at the next pass.
                let _ = run.terminate();
            }
        }
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Clears a previous cancellation so the token can be reused.
    pub fn reset(&self) {
        self.flag.store(false, Ordering::SeqCst);
    }

    /// Fresh run options for the next ONNX Runtime call, registered for termination.
    fn run_options(&self) -> Result<Arc<RunOptions>, EngineError> {
        let mut runs = self.run_options_for(1)?;
        runs.pop()
            .ok_or_else(|| EngineError::Input("no run options".to_owned()))
    }

    /// Fresh run options for `n` concurrent runs (the ranks of a partitioned
    /// decoder), all terminated by [`CancelToken::cancel`].
    pub(crate) fn run_options_for(&self, n: usize) -> Result<Vec<Arc<RunOptions>>, EngineError> {
        let runs = (0..n)
            .map(|_| {
                RunOptions::new()
                    .map(Arc::new)
                    .map_err(|e| EngineError::onnx("run options", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Ok(mut current) = self.current.lock() {
            current.clone_from(&runs);
        }
        Ok(runs)
    }
}

/// A loaded model.
pub struct Model {
    /// The model's manifest.
    pub manifest: Manifest,
    /// The model directory.
    pub dir: PathBuf,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The model's key names.
    pub keys: KeyVocabulary,
    /// The execution provider sessions were created with.
    pub provider: lumine_config::ExecutionProvider,
    preprocessor: Preprocessor,
    vision: Session,
    embed: Session,
    decoder: Decoder,
    past_names: Vec<(String, String)>,
    present_names: Vec<(String, String)>,
    vocab_index: OnceLock<Arc<VocabIndex>>,
    /// Image features by the caller's image id, for frames that stay in the
    /// context for many steps (encoded once, not once per step).
    vision_cache: VisionCache,
}

/// Images whose features are kept (more than the longest context window).
const VISION_CACHE_CAPACITY: usize = 64;

/// Recently encoded images' features, least recently used evicted first.
#[derive(Debug, Default)]
struct VisionCache {
    entries: std::collections::HashMap<u64, (Arc<[f32]>, u64)>,
    tick: u64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.manifest.name)
            .field("dir", &self.dir)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// The text decoder: one graph, or tensor-parallel ranks ([`crate::partition`]).
enum Decoder {
    Whole(Session),
    Ranks(RankExecutor),
}

/// Opens one graph with the chosen providers.
fn open_session(
    runtime: &ort_library::OrtRuntime,
    path: &Path,
    options: &ProviderOptions,
) -> Result<Session, EngineError> {
    let graph = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if !path.is_file() {
        return Err(EngineError::File {
            path: path.to_owned(),
            message: "graph file is missing".to_owned(),
        });
    }
    let providers = provider::dispatch(options)?;
    Session::builder(&runtime.environment)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Level3)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .with_execution_providers(providers)
        .map_err(|e| EngineError::onnx(&graph, e))?
        .commit_from_file(path)
        .map_err(|e| EngineError::onnx(&graph, e))
}

impl Model {
    /// Opens the model in `dir` on the execution provider in `options`.
    pub fn load(
        dir: &Path,
        options: &ProviderOptions,
        ort_library_path: Option<&Path>,
    ) -> Result<Self, EngineError> {
        let runtime = ort_library::load(ort_library_path)?;
        let manifest = Manifest::load(dir)?;
        let tokenizer = Tokenizer::load(&dir.join(&manifest.tokenizer))?;
        if let Some(problem) = tokenizer.special_token_problems(&manifest.tokens).first() {
            return Err(EngineError::File {
                path: dir.join(&manifest.tokenizer),
                message: problem.clone(),
            });
        }
        let keys_path = dir.join(&manifest.key_vocabulary);
        let keys_text = std::fs::read_to_string(&keys_path).map_err(|e| EngineError::File {
            path: keys_path.clone(),
            message: e.to_string(),
        })?;
        let keys = KeyVocabulary::from_ron(&keys_text).map_err(|e| EngineError::File {
            path: keys_path,
            message: e.to_string(),
        })?;
        // Two threads: a frame is preprocessed before the vision encoder runs,
        // while the ONNX Runtime pool is idle, so the second core is free
        // (BENCHMARKS.md, image preprocessing).
        let preprocessor = Preprocessor::new(preprocess_config(&manifest))?.with_threads(2);
        let vision = open_session(runtime, &dir.join(&manifest.graphs.vision_encoder), options)?;
        let embed = open_session(runtime, &dir.join(&manifest.graphs.embed_tokens), options)?;
        let decoder = if manifest.partitions > 1 {
            Decoder::Ranks(RankExecutor::start(runtime, dir, &manifest, options)?)
        } else {
            Decoder::Whole(open_session(
                runtime,
                &dir.join(&manifest.graphs.decoder),
                options,
            )?)
        };
        let layers = manifest.text.num_layers;
        let names = |prefix: &str| -> Vec<(String, String)> {
            (0..layers)
                .map(|i| (format!("{prefix}.{i}.key"), format!("{prefix}.{i}.value")))
                .collect()
        };
        Ok(Self {
            past_names: names("past_key_values"),
            present_names: names("present"),
            manifest,
            dir: dir.to_owned(),
            tokenizer,
            keys,
            provider: options.provider,
            preprocessor,
            vision,
            embed,
            decoder,
            vocab_index: OnceLock::new(),
            vision_cache: VisionCache::default(),
        })
    }

    /// The tokenizer's vocabulary indexed for constrained decoding, built on first
    /// use and shared by every session on this model.
    pub fn vocab_index(&self) -> Arc<VocabIndex> {
        Arc::clone(self.vocab_index.get_or_init(|| {
            Arc::new(VocabIndex::from_tokenizer(
                &self.tokenizer,
                self.manifest.text.vocab_size,
            ))
        }))
    }

    /// The text decoder's rotary table (for re-positioning cached keys).
    pub fn rope_table(&self) -> RopeTable {
        let t = &self.manifest.text;
        RopeTable::new(t.head_dim, t.rope_theta, &t.mrope_section)
    }

    /// Hidden size of the text decoder.
    pub fn hidden_size(&self) -> usize {
        self.manifest.text.hidden_size
    }

    /// Preprocesses an RGB frame into `pixel_values` (reusing internal buffers).
    pub fn preprocess(&mut self, image: RgbImageRef<'_>) -> Result<PixelValues, EngineError> {
        Ok(self.preprocessor.preprocess(image)?)
    }

    /// [`Model::encode_image`] through a cache: `id` names the image (the
    /// caller guarantees one id is never reused for different pixels), and
    /// an image already encoded under it is not encoded again.
    ///
    /// # Errors
    /// As [`Model::encode_image`].
    pub fn encode_image_cached(
        &mut self,
        id: u64,
        pixels: &PixelValues,
        cancel: &CancelToken,
    ) -> Result<Arc<[f32]>, EngineError> {
        self.vision_cache.tick += 1;
        let tick = self.vision_cache.tick;
        if let Some((features, used)) = self.vision_cache.entries.get_mut(&id) {
            *used = tick;
            return Ok(Arc::clone(features));
        }
        let features: Arc<[f32]> = self.encode_image(pixels, cancel)?.into();
        let cache = &mut self.vision_cache;
        if cache.entries.len() >= VISION_CACHE_CAPACITY
            && let Some(&oldest) = cache
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id)
        {
            cache.entries.remove(&oldest);
        }
        cache.entries.insert(id, (Arc::clone(&features), tick));
        Ok(features)
    }

    /// Runs the vision encoder on one image; returns `[tokens * hidden]` features.
    pub fn encode_image(
        &mut self,
        pixels: &PixelValues,
        cancel: &CancelToken,
    ) -> Result<Vec<f32>, EngineError> {
        let graph = self.manifest.graphs.vision_encoder.clone();
        let hidden = self.hidden_size();
        let err = |e: ort::Error| EngineError::onnx(&graph, e);
        // A view: the frame's pixel values are not copied again.
        let values = TensorRef::from_array_view(([pixels.rows, pixels.cols], &pixels.data[..]))
            .map_err(err)?;
        let grid = Tensor::from_array(([1usize, 3], pixels.grid_thw.to_vec())).map_err(err)?;
        let run = cancel.run_options()?;
        let outputs = self
            .vision
            .run_with_options(
                ort::inputs!["pixel_values" => values, "grid_thw" => grid],
                &run,
            )
            .map_err(|e| cancelled_or(cancel, EngineError::onnx(&graph, e)))?;
        let (shape, data) = outputs["image_features"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        let expected = [pixels.num_image_tokens() as i64, hidden as i64];
        if **shape != expected {
            return Err(EngineError::Input(format!(
                "{graph}: image_features has shape {shape:?}, expected {expected:?}"
            )));
        }
        Ok(data.to_vec())
    }

    /// Embeds token ids; returns `[ids.len() * hidden]`.
    pub fn embed_tokens(&mut self, ids: &[u32]) -> Result<Vec<f32>, EngineError> {
        let graph = self.manifest.graphs.embed_tokens.clone();
        let err = |e: ort::Error| EngineError::onnx(&graph, e);
        let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let input = Tensor::from_array(([1, ids.len()], ids)).map_err(err)?;
        let outputs = self
            .embed
            .run(ort::inputs!["input_ids" => input])
            .map_err(err)?;
        let (_, data) = outputs["inputs_embeds"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        Ok(data.to_vec())
    }

    /// An empty KV cache shaped for this model (for a partitioned model: every
    /// rank's layers, rank-major, each with the rank's share of the KV heads).
    pub fn new_cache(&self) -> Result<KvCache, EngineError> {
        let ranks = self.manifest.partitions.max(1);
        KvCache::empty(
            self.manifest.text.num_layers * ranks,
            self.manifest.text.num_key_value_heads / ranks,
            self.manifest.text.head_dim,
        )
    }

    /// Tensor-parallel ranks the decoder runs on (1: not partitioned).
    pub fn partitions(&self) -> usize {
        match &self.decoder {
            Decoder::Whole(_) => 1,
            Decoder::Ranks(ranks) => ranks.partitions(),
        }
    }

    /// Runs the decoder on `embeds` (`[S * hidden]`) at M-RoPE `positions` (three rows
    /// of length S) after the tokens already in `cache`; appends their keys and values
    /// to the cache and returns the logits of every new position, `[S * vocab]`.
    pub fn forward(
        &mut self,
        embeds: Vec<f32>,
        positions: [&[i64]; 3],
        cache: &mut KvCache,
        cancel: &CancelToken,
    ) -> Result<Vec<f32>, EngineError> {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let graph = self.manifest.graphs.decoder.clone();
        let err = |e: ort::Error| EngineError::onnx(&graph, e);
        let hidden = self.hidden_size();
        let seq = positions[0].len();
        if embeds.len() != seq * hidden || positions.iter().any(|row| row.len() != seq) {
            return Err(EngineError::Input(format!(
                "forward: {} embedding values and position rows of {:?} do not describe {seq} tokens of width {hidden}",
                embeds.len(),
                positions.map(<[i64]>::len)
            )));
        }
        let total = cache.len() + seq;
        let position_ids: Vec<i64> = positions
            .iter()
            .flat_map(|row| row.iter().copied())
            .collect();
        let decoder = match &mut self.decoder {
            Decoder::Whole(session) => session,
            Decoder::Ranks(ranks) => {
                return ranks.forward(embeds, position_ids, hidden, cache, cancel);
            }
        };
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = vec![
            (
                "inputs_embeds".into(),
                Tensor::from_array(([1, seq, hidden], embeds))
                    .map_err(err)?
                    .into(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array(([1, total], vec![1i64; total]))
                    .map_err(err)?
                    .into(),
            ),
            (
                "position_ids".into(),
                Tensor::from_array(([3, 1, seq], position_ids))
                    .map_err(err)?
                    .into(),
            ),
        ];
        for ((key_name, value_name), (key, value)) in self.past_names.iter().zip(cache.layers()) {
            inputs.push((Cow::from(key_name.as_str()), SessionInputValue::from(key)));
            inputs.push((
                Cow::from(value_name.as_str()),
                SessionInputValue::from(value),
            ));
        }
        let run = cancel.run_options()?;
        let mut outputs = decoder
            .run_with_options(inputs, &run)
            .map_err(|e| cancelled_or(cancel, EngineError::onnx(&graph, e)))?;
        let logits = {
            let (_, data) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
            data.to_vec()
        };
        let mut present: Vec<(DynValue, DynValue)> = Vec::with_capacity(self.present_names.len());
        for (key_name, value_name) in &self.present_names {
            let missing = || EngineError::Input(format!("{graph}: output {key_name} missing"));
            let key = outputs.remove(key_name.as_str()).ok_or_else(missing)?;
            let value = outputs.remove(value_name.as_str()).ok_or_else(missing)?;
            present.push((key, value));
        }
        drop(outputs);
        cache.replace(present, total)?;
        Ok(logits)
    }
}

fn cancelled_or(cancel: &CancelToken, err: EngineError) -> EngineError {
    if cancel.is_cancelled() {
        EngineError::Cancelled
    } else {
        err
    }
}

/// The vision crate's configuration from the manifest.
pub fn preprocess_config(manifest: &Manifest) -> PreprocessConfig {
    PreprocessConfig {
        min_pixels: manifest.preprocess.min_pixels,
        max_pixels: manifest.preprocess.max_pixels,
        patch_size: manifest.vision.patch_size,
        // A folded graph takes one copy of the still frame per patch.
        temporal_patch_size: if manifest.vision.temporal_folded {
            1
        } else {
            manifest.vision.temporal_patch_size
        },
        merge_size: manifest.vision.spatial_merge_size,
        // Validated to hold three values when the manifest was loaded.
        image_mean: rgb(&manifest.preprocess.image_mean),
        image_std: rgb(&manifest.preprocess.image_std),
    }
}

fn rgb(values: &[f32]) -> [f32; 3] {
    let mut out = [0.0; 3];
    for (o, v) in out.iter_mut().zip(values) {
        *o = *v;
    }
    out
}
