//! `manifest.ron`: what a model directory holds and how to drive it.
//!
//! Written by `models/export/export.py`; everything model-specific (sizes, special
//! token ids, key names, mouse scale, prompts, frame size) is data here, not a
//! constant in the code, so another checkpoint needs no rebuild.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The manifest format this build reads.
pub const FORMAT_VERSION: u32 = 1;

/// File name of the manifest inside a model directory.
pub const MANIFEST_FILE: &str = "manifest.ron";

/// Text decoder sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    /// Hidden size `D`.
    pub hidden_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention).
    pub num_key_value_heads: usize,
    /// Per-head size.
    pub head_dim: usize,
    /// MLP inner size.
    pub intermediate_size: usize,
    /// Vocabulary size (rows of the logits).
    pub vocab_size: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base.
    pub rope_theta: f64,
    /// M-RoPE sections (t, h, w) in rotary pairs: three numbers summing to `head_dim / 2`.
    pub mrope_section: Vec<usize>,
}

/// Vision tower sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Transformer blocks.
    pub depth: usize,
    /// Embedding size `E`.
    pub embed_dim: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Patch side in pixels (14).
    pub patch_size: u32,
    /// Frames per temporal patch (2).
    pub temporal_patch_size: u32,
    /// Spatial merge factor (2: 2x2 patches become one token).
    pub spatial_merge_size: u32,
    /// Size of the merged features (equals the text hidden size).
    pub out_hidden_size: usize,
    /// The vision graph's patch embedding has its temporal kernel summed, so
    /// it takes a still frame once per patch (`3 · patch_size²` columns)
    /// instead of `temporal_patch_size` identical copies: half the bytes to
    /// write per frame. Absent in older manifests (then `false`).
    #[serde(default)]
    pub temporal_folded: bool,
}

impl VisionConfig {
    /// Columns of the vision graph's `pixel_values`: `3 · patch_size²` when
    /// the temporal kernel is folded, else `3 · temporal_patch_size · patch_size²`.
    #[must_use]
    pub fn pixel_columns(&self) -> usize {
        let copies = if self.temporal_folded {
            1
        } else {
            self.temporal_patch_size as usize
        };
        3 * copies * (self.patch_size as usize).pow(2)
    }
}

/// Image preprocessing bounds and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessManifest {
    /// Lower bound of the resized area in pixels.
    pub min_pixels: u64,
    /// Upper bound of the resized area in pixels.
    pub max_pixels: u64,
    /// Per-channel mean (RGB, 0..1 scale): three numbers.
    pub image_mean: Vec<f32>,
    /// Per-channel standard deviation (RGB, 0..1 scale): three numbers.
    pub image_std: Vec<f32>,
}

/// The frame size the agent feeds the model (captured frames are scaled to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameSize {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Special token ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecialTokens {
    /// `<|endoftext|>`.
    pub endoftext: u32,
    /// `<|im_start|>`.
    pub im_start: u32,
    /// `<|im_end|>`.
    pub im_end: u32,
    /// `<|vision_start|>`.
    pub vision_start: u32,
    /// `<|vision_end|>`.
    pub vision_end: u32,
    /// `<|image_pad|>`: one per visual token after expansion.
    pub image_pad: u32,
    /// `<|video_pad|>`.
    pub video_pad: u32,
    /// `<|thought_start|>`.
    pub thought_start: u32,
    /// `<|thought_end|>`.
    pub thought_end: u32,
    /// `<|action_start|>`.
    pub action_start: u32,
    /// `<|action_end|>`.
    pub action_end: u32,
}

impl SpecialTokens {
    /// Every special token with its text form, for checks against the tokenizer.
    pub fn named(&self) -> [(&'static str, u32); 11] {
        [
            ("<|endoftext|>", self.endoftext),
            ("<|im_start|>", self.im_start),
            ("<|im_end|>", self.im_end),
            ("<|vision_start|>", self.vision_start),
            ("<|vision_end|>", self.vision_end),
            ("<|image_pad|>", self.image_pad),
            ("<|video_pad|>", self.video_pad),
            ("<|thought_start|>", self.thought_start),
            ("<|thought_end|>", self.thought_end),
            ("<|action_start|>", self.action_start),
            ("<|action_end|>", self.action_end),
        ]
    }
}

/// File names of the three ONNX graphs, relative to the model directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graphs {
    /// `pixel_values`, `grid_thw` -> `image_features`.
    pub vision_encoder: String,
    /// `input_ids` -> `inputs_embeds`.
    pub embed_tokens: String,
    /// The decoder with KV cache in and out.
    pub decoder: String,
}

/// Pixels per action unit of mouse motion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MouseScale {
    /// Pixels per unit of `DX`.
    pub x: f32,
    /// Pixels per unit of `DY`.
    pub y: f32,
}

/// System prompts for the two agent modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// Instruction following: actions only.
    pub instruction: String,
    /// Reasoning: may think before acting.
    pub reasoning: String,
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Human-readable model name.
    pub name: String,
    /// Architecture; only `qwen2_vl` is supported.
    pub architecture: String,
    /// Text decoder sizes.
    pub text: TextConfig,
    /// Vision tower sizes.
    pub vision: VisionConfig,
    /// Preprocessing parameters.
    pub preprocess: PreprocessManifest,
    /// Frame size fed to the model.
    pub frame: FrameSize,
    /// Special token ids.
    pub tokens: SpecialTokens,
    /// Graph file names.
    pub graphs: Graphs,
    /// Tokenizer file name (`tokenizer.json`).
    pub tokenizer: String,
    /// Key vocabulary file name (RON, `lumine-action` format).
    pub key_vocabulary: String,
    /// Mouse units to pixels.
    pub mouse_scale: MouseScale,
    /// System prompts.
    pub prompts: Prompts,
    /// Tensor-parallel partitions of the decoder (1: not partitioned; absent means 1).
    #[serde(default = "one")]
    pub partitions: usize,
    /// The rank graphs of a partitioned decoder (`None` when not partitioned; absent
    /// in manifests written before partitioning existed).
    #[serde(default)]
    pub partition: Option<PartitionManifest>,
    /// Frames of context the model was trained with: the runtime never shows
    /// it more (`None`, or absent: any number, the runtime's setting).
    #[serde(default)]
    pub history_frames: Option<usize>,
}

fn one() -> usize {
    1
}

/// How the decoder is split over tensor-parallel ranks (`crate::partition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionManifest {
    /// Decoder graph of each rank, rank 0 first (rank 0 equals `graphs.decoder`).
    pub ranks: Vec<String>,
    /// The cross-rank reduction the graphs call, `ai.lumine.AllReduceSum`.
    pub reduce_op: String,
    /// The rank that computes the logits (the others output `hidden_states`).
    pub lm_head_rank: usize,
}

/// A problem with a model directory.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest is not valid RON for [`Manifest`].
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The manifest parsed but is inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// Reads and validates `DIR/manifest.ron`.
    pub fn load(model_dir: &Path) -> Result<Self, ManifestError> {
        let path = model_dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_ron(&text, &path)
    }

    /// Parses and validates manifest text; `path` is used in messages.
    pub fn from_ron(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let manifest: Self = ron::from_str(text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        })?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid {
                path: path.to_owned(),
                message: problems.join("; "),
            })
        }
    }

    /// The decoder graph of every tensor-parallel rank (one entry, `graphs.decoder`,
    /// when not partitioned).
    pub fn rank_graphs(&self) -> Vec<String> {
        match &self.partition {
            Some(p) if self.partitions > 1 => p.ranks.clone(),
            _ => vec![self.graphs.decoder.clone()],
        }
    }

    fn partition_problem(&self) -> Option<String> {
        let expected_op = format!(
            "{}.{}",
            crate::partition::DOMAIN,
            crate::partition::ALL_REDUCE_OP
        );
        match (&self.partition, self.partitions) {
            (None, 1) => None,
            (None, n) => Some(format!(
                "partitions {n} needs a `partition: Some((ranks: [...], ...))` entry naming the rank graphs"
            )),
            (Some(p), n) if p.ranks.len() != n => Some(format!(
                "partition.ranks names {} graphs but partitions is {n}",
                p.ranks.len()
            )),
            (Some(p), _) if p.ranks.first() != Some(&self.graphs.decoder) => Some(format!(
                "partition.ranks[0] {:?} must be graphs.decoder {:?}",
                p.ranks.first(),
                self.graphs.decoder
            )),
            (Some(p), _) if p.reduce_op != expected_op => Some(format!(
                "partition.reduce_op {:?} is not supported (only {expected_op:?})",
                p.reduce_op
            )),
            (Some(p), _) if p.lm_head_rank != 0 => Some(format!(
                "partition.lm_head_rank {} is not supported (only 0)",
                p.lm_head_rank
            )),
            _ => None,
        }
    }

    /// Every internal inconsistency, as sentences a user can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let t = &self.text;
        let v = &self.vision;
        if self.format_version != FORMAT_VERSION {
            out.push(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION}); re-export the model",
                self.format_version
            ));
        }
        if self.history_frames == Some(0) {
            out.push("history_frames must be at least 1 (or absent)".to_owned());
        }
        if self.architecture != "qwen2_vl" {
            out.push(format!(
                "architecture {:?} is not supported (only \"qwen2_vl\")",
                self.architecture
            ));
        }
        if t.num_key_value_heads == 0
            || !t.num_attention_heads.is_multiple_of(t.num_key_value_heads)
        {
            out.push(format!(
                "text.num_attention_heads {} is not a multiple of num_key_value_heads {}",
                t.num_attention_heads, t.num_key_value_heads
            ));
        }
        if t.mrope_section.len() != 3
            || !t.head_dim.is_multiple_of(2)
            || t.mrope_section.iter().sum::<usize>() * 2 != t.head_dim
        {
            out.push(format!(
                "text.mrope_section {:?} must sum to head_dim / 2 = {}",
                t.mrope_section,
                t.head_dim / 2
            ));
        }
        if v.out_hidden_size != t.hidden_size {
            out.push(format!(
                "vision.out_hidden_size {} differs from text.hidden_size {}",
                v.out_hidden_size, t.hidden_size
            ));
        }
        if v.num_heads == 0 || !v.embed_dim.is_multiple_of(v.num_heads) {
            out.push(format!(
                "vision.embed_dim {} is not a multiple of num_heads {}",
                v.embed_dim, v.num_heads
            ));
        }
        if self.preprocess.min_pixels > self.preprocess.max_pixels {
            out.push("preprocess.min_pixels exceeds max_pixels".to_owned());
        }
        if self.preprocess.image_mean.len() != 3 || self.preprocess.image_std.len() != 3 {
            out.push("preprocess.image_mean and image_std must have three values (RGB)".to_owned());
        }
        if self.preprocess.image_std.iter().any(|&s| s <= 0.0) {
            out.push("preprocess.image_std must be positive".to_owned());
        }
        if self.frame.width == 0 || self.frame.height == 0 {
            out.push("frame width and height must be positive".to_owned());
        }
        if self.partitions == 0 || !t.num_key_value_heads.is_multiple_of(self.partitions) {
            out.push(format!(
                "partitions {} must divide num_key_value_heads {}",
                self.partitions, t.num_key_value_heads
            ));
        } else if let Some(problem) = self.partition_problem() {
            out.push(problem);
        }
        let ids = self.tokens.named();
        for (name, id) in ids {
            if id as usize >= t.vocab_size {
                out.push(format!(
                    "token {name} id {id} is outside the vocabulary ({})",
                    t.vocab_size
                ));
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid manifest for tests (the sizes of the committed tiny test model).
    pub(crate) fn sample() -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            name: "sample".to_owned(),
            architecture: "qwen2_vl".to_owned(),
            text: TextConfig {
                hidden_size: 96,
                num_layers: 3,
                num_attention_heads: 6,
                num_key_value_heads: 3,
                head_dim: 16,
                intermediate_size: 192,
                vocab_size: 1000,
                rms_norm_eps: 1e-6,
                rope_theta: 1e6,
                mrope_section: vec![2, 3, 3],
            },
            vision: VisionConfig {
                depth: 3,
                embed_dim: 48,
                num_heads: 3,
                patch_size: 14,
                temporal_patch_size: 2,
                spatial_merge_size: 2,
                out_hidden_size: 96,
                temporal_folded: true,
            },
            preprocess: PreprocessManifest {
                min_pixels: 3136,
                max_pixels: 12_845_056,
                image_mean: vec![0.481_454_66, 0.457_827_5, 0.408_210_73],
                image_std: vec![0.268_629_54, 0.261_302_6, 0.275_777_1],
            },
            frame: FrameSize {
                width: 1280,
                height: 720,
            },
            tokens: SpecialTokens {
                endoftext: 900,
                im_start: 901,
                im_end: 902,
                vision_start: 903,
                vision_end: 904,
                image_pad: 905,
                video_pad: 906,
                thought_start: 907,
                thought_end: 908,
                action_start: 909,
                action_end: 910,
            },
            graphs: Graphs {
                vision_encoder: "vision_encoder.onnx".to_owned(),
                embed_tokens: "embed_tokens.onnx".to_owned(),
                decoder: "decoder_model_merged.onnx".to_owned(),
            },
            tokenizer: "tokenizer.json".to_owned(),
            key_vocabulary: "keys.ron".to_owned(),
            mouse_scale: MouseScale { x: 5.0, y: 4.0 },
            prompts: Prompts {
                instruction: "Play.".to_owned(),
                reasoning: "Think, then play.".to_owned(),
            },
            partitions: 1,
            partition: None,
            history_frames: None,
        }
    }

    #[test]
    fn round_trips_through_ron() {
        let m = sample();
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default()).unwrap();
        assert_eq!(Manifest::from_ron(&text, Path::new("m.ron")).unwrap(), m);
    }

    #[test]
    fn the_trained_history_is_optional_and_at_least_one_frame() {
        let mut m = sample();
        assert!(m.problems().is_empty());
        m.history_frames = Some(2);
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default()).unwrap();
        assert_eq!(
            Manifest::from_ron(&text, Path::new("m.ron"))
                .unwrap()
                .history_frames,
            Some(2)
        );
        m.history_frames = Some(0);
        assert_eq!(m.problems().len(), 1, "{:?}", m.problems());
    }

    #[test]
    fn inconsistencies_are_all_reported() {
        let mut m = sample();
        m.text.mrope_section = vec![2, 3, 4];
        m.vision.out_hidden_size = 64;
        m.partitions = 2;
        m.tokens.action_end = 5000;
        let problems = m.problems();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("mrope_section"));
        assert!(problems.iter().any(|p| p.contains("<|action_end|>")));
    }

    #[test]
    fn manifests_without_partition_fields_still_load() {
        let m = sample();
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default()).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("partition"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(!old.contains("partition"), "{old}");
        let loaded = Manifest::from_ron(&old, Path::new("m.ron")).unwrap();
        assert_eq!(loaded.partitions, 1);
        assert_eq!(loaded.partition, None);
        assert_eq!(loaded.rank_graphs(), vec![m.graphs.decoder]);
    }

    #[test]
    fn manifests_without_temporal_folded_take_both_copies() {
        let m = sample();
        assert_eq!(m.vision.pixel_columns(), 588);
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default()).unwrap();
        let old: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("temporal_folded"))
            .collect::<Vec<_>>()
            .join("\n");
        let loaded = Manifest::from_ron(&old, Path::new("m.ron")).unwrap();
        assert!(!loaded.vision.temporal_folded);
        assert_eq!(loaded.vision.pixel_columns(), 1176);
    }

    #[test]
    fn partition_entry_must_match_partitions() {
        let mut m = sample();
        m.partitions = 3;
        let problems = m.problems();
        assert!(
            problems.iter().any(|p| p.contains("needs a `partition")),
            "{problems:?}"
        );
        m.partition = Some(PartitionManifest {
            ranks: vec![
                "decoder.rank0.onnx".to_owned(),
                "decoder.rank1.onnx".to_owned(),
            ],
            reduce_op: "ai.lumine.AllReduceSum".to_owned(),
            lm_head_rank: 0,
        });
        m.graphs.decoder = "decoder.rank0.onnx".to_owned();
        assert!(m.problems().iter().any(|p| p.contains("names 2 graphs")));
        m.partition
            .as_mut()
            .unwrap()
            .ranks
            .push("decoder.rank2.onnx".to_owned());
        assert_eq!(m.problems(), Vec::<String>::new());
        assert_eq!(m.rank_graphs().len(), 3);
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default()).unwrap();
        assert_eq!(Manifest::from_ron(&text, Path::new("m.ron")).unwrap(), m);
    }

    #[test]
    fn unknown_field_is_a_syntax_error_with_line() {
        let m = sample();
        let text = ron::ser::to_string_pretty(&m, ron::ser::PrettyConfig::default())
            .unwrap()
            .replacen("name:", "nmae:", 1);
        let err = Manifest::from_ron(&text, Path::new("m.ron")).unwrap_err();
        assert!(
            matches!(err, ManifestError::Syntax { line: 3, .. }),
            "{err}"
        );
    }
}
