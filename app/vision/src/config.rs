//! Preprocessing configuration and `smart_resize` (QWEN2VL.md §1).

use serde::Deserialize;

use crate::PreprocessError;

/// CLIP mean, as in the Qwen2-VL `preprocessor_config.json`.
const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP std, as in the Qwen2-VL `preprocessor_config.json`.
// The JSON's digits verbatim (they round to the same f32 as serde's parse).
#[allow(clippy::excessive_precision)]
const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// The image processor's settings (the legacy `preprocessor_config.json` keys).
///
/// Deserialises from a Qwen2-VL `preprocessor_config.json`: missing keys take
/// the 7B defaults, unknown keys are ignored. A transformers 5.x style
/// `size: {shortest_edge, longest_edge}` is honoured too; as in transformers,
/// the legacy `min_pixels` / `max_pixels` keys win over it when both are given.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "RawConfig")]
pub struct PreprocessConfig {
    /// Lower bound on the resized pixel count (`size.shortest_edge`, despite the name).
    pub min_pixels: u64,
    /// Upper bound on the resized pixel count (`size.longest_edge`, despite the name).
    pub max_pixels: u64,
    /// Side of a square ViT patch in pixels (14).
    pub patch_size: u32,
    /// Frames per temporal patch (2); a still image is repeated this many
    /// times. 1 writes one copy, for a vision graph whose patch embedding has
    /// its temporal kernel folded (summed): half the output, same features.
    pub temporal_patch_size: u32,
    /// Side of the square window of patches merged into one LLM token (2).
    pub merge_size: u32,
    /// Per-channel mean on the [0, 1] scale (RGB).
    pub image_mean: [f32; 3],
    /// Per-channel standard deviation on the [0, 1] scale (RGB).
    pub image_std: [f32; 3],
}

impl Default for PreprocessConfig {
    /// The Qwen2-VL-7B values. Note transformers' *class* default `max_pixels`
    /// is 1003520; the 7B checkpoint configures 12845056 (QWEN2VL.md §1).
    fn default() -> Self {
        Self {
            min_pixels: 3136,
            max_pixels: 12_845_056,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: CLIP_MEAN,
            image_std: CLIP_STD,
        }
    }
}

impl PreprocessConfig {
    /// `patch_size · merge_size` (28): both resized sides are multiples of it.
    pub fn factor(&self) -> u32 {
        self.patch_size * self.merge_size
    }

    /// Columns of `pixel_values`: `3 · temporal_patch_size · patch_size²` (1176).
    pub fn patch_dim(&self) -> usize {
        3 * self.temporal_patch_size as usize * (self.patch_size as usize).pow(2)
    }

    /// Rejects settings the pipeline cannot run with.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.patch_size == 0 || self.merge_size == 0 || self.temporal_patch_size == 0 {
            return Err(PreprocessError::InvalidConfig(
                "patch_size, merge_size and temporal_patch_size must be positive",
            ));
        }
        if self.patch_size.checked_mul(self.merge_size).is_none() {
            return Err(PreprocessError::InvalidConfig(
                "patch_size * merge_size overflows",
            ));
        }
        if self.max_pixels == 0 {
            // transformers would raise ZeroDivisionError on the first large image.
            return Err(PreprocessError::InvalidConfig(
                "max_pixels must be positive",
            ));
        }
        Ok(())
    }
}

/// transformers 5.x `size` dict.
#[derive(Deserialize)]
struct RawSize {
    shortest_edge: Option<u64>,
    longest_edge: Option<u64>,
}

/// What a `preprocessor_config.json` may contain; mapped onto [`PreprocessConfig`].
#[derive(Deserialize)]
struct RawConfig {
    min_pixels: Option<u64>,
    max_pixels: Option<u64>,
    size: Option<RawSize>,
    patch_size: Option<u32>,
    temporal_patch_size: Option<u32>,
    merge_size: Option<u32>,
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
}

impl From<RawConfig> for PreprocessConfig {
    fn from(raw: RawConfig) -> Self {
        let d = Self::default();
        let (size_min, size_max) = raw
            .size
            .map_or((None, None), |s| (s.shortest_edge, s.longest_edge));
        Self {
            min_pixels: raw.min_pixels.or(size_min).unwrap_or(d.min_pixels),
            max_pixels: raw.max_pixels.or(size_max).unwrap_or(d.max_pixels),
            patch_size: raw.patch_size.unwrap_or(d.patch_size),
            temporal_patch_size: raw.temporal_patch_size.unwrap_or(d.temporal_patch_size),
            merge_size: raw.merge_size.unwrap_or(d.merge_size),
            image_mean: raw.image_mean.unwrap_or(d.image_mean),
            image_std: raw.image_std.unwrap_or(d.image_std),
        }
    }
}

/// The resized `(height, width)` for an image of `height × width`, exactly as
/// transformers' `smart_resize` (QWEN2VL.md §1): both multiples of
/// `factor = patch_size · merge_size`, pixel count brought within
/// `[min_pixels, max_pixels]`, aspect ratio roughly kept.
///
/// All arithmetic is f64 in Python's operation order; Python's `round` is
/// half-to-even (`f64::round_ties_even`). There is deliberately no "too small"
/// error: tiny images go through the `min_pixels` branch (1×1 → 56×56).
///
/// # Errors
/// [`PreprocessError::ZeroSize`] for a zero side, [`PreprocessError::AspectRatio`]
/// when `max/min > 200` (exactly 200 passes), [`PreprocessError::InvalidConfig`]
/// for an unusable config, [`PreprocessError::SizeOverflow`] if the result
/// exceeds `u32`.
pub fn smart_resize(
    height: u32,
    width: u32,
    config: &PreprocessConfig,
) -> Result<(u32, u32), PreprocessError> {
    config.validate()?;
    if height == 0 || width == 0 {
        return Err(PreprocessError::ZeroSize { height, width });
    }
    // Python: `max(h, w) / min(h, w) > 200`, a true (correctly rounded) division.
    let (h, w) = (f64::from(height), f64::from(width));
    if h.max(w) / h.min(w) > 200.0 {
        return Err(PreprocessError::AspectRatio { height, width });
    }
    let factor = f64::from(config.factor());
    // `h * w` is an exact Python int; as f64 it is exact below 2^53 pixels.
    let area = (u64::from(height) * u64::from(width)) as f64;
    let mut h_bar = (h / factor).round_ties_even() * factor;
    let mut w_bar = (w / factor).round_ties_even() * factor;
    // The products are exact integers in Python: compare them exactly.
    let bar_area = (h_bar as u128) * (w_bar as u128);
    if bar_area > u128::from(config.max_pixels) {
        let beta = (area / config.max_pixels as f64).sqrt();
        // Operation order matters: `h / beta / factor`, not `h / (beta * factor)`.
        h_bar = factor.max((h / beta / factor).floor() * factor);
        w_bar = factor.max((w / beta / factor).floor() * factor);
    } else if bar_area < u128::from(config.min_pixels) {
        let beta = (config.min_pixels as f64 / area).sqrt();
        h_bar = (h * beta / factor).ceil() * factor;
        w_bar = (w * beta / factor).ceil() * factor;
    }
    let max = f64::from(u32::MAX);
    if !(h_bar <= max && w_bar <= max) {
        return Err(PreprocessError::SizeOverflow { height, width });
    }
    Ok((h_bar as u32, w_bar as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sr(h: u32, w: u32) -> Result<(u32, u32), PreprocessError> {
        smart_resize(h, w, &PreprocessConfig::default())
    }

    #[test]
    fn doc_examples() {
        // QWEN2VL.md §1, all examples.
        assert_eq!(sr(720, 1280), Ok((728, 1288)));
        assert_eq!(sr(257, 333), Ok((252, 336)));
        assert_eq!(sr(42, 70), Ok((56, 56)), "half-even: 1.5→2, 2.5→2");
        assert_eq!(sr(70, 98), Ok((56, 112)), "half-even: 2.5→2, 3.5→4");
        assert_eq!(sr(4000, 5000), Ok((3192, 4004)));
        assert_eq!(sr(14, 14), Ok((56, 56)));
        assert_eq!(sr(1, 1), Ok((56, 56)));
        assert_eq!(sr(1, 100), Ok((28, 560)));
        assert_eq!(sr(10, 2000), Ok((28, 812)));
    }

    #[test]
    fn aspect_ratio_limit() {
        assert_eq!(
            sr(10, 2001),
            Err(PreprocessError::AspectRatio {
                height: 10,
                width: 2001
            })
        );
        assert_eq!(
            sr(2001, 10),
            Err(PreprocessError::AspectRatio {
                height: 2001,
                width: 10
            })
        );
        // Exactly 200 passes.
        assert!(sr(10, 2000).is_ok());
        assert!(sr(2000, 10).is_ok());
        assert!(sr(1, 200).is_ok());
        assert!(sr(1, 201).is_err());
    }

    #[test]
    fn zero_size() {
        assert_eq!(
            sr(0, 10),
            Err(PreprocessError::ZeroSize {
                height: 0,
                width: 10
            })
        );
        assert!(matches!(sr(10, 0), Err(PreprocessError::ZeroSize { .. })));
    }

    #[test]
    fn class_default_max_pixels() {
        // transformers' class default (1003520) is much smaller than the 7B one.
        let cfg = PreprocessConfig {
            max_pixels: 1_003_520,
            ..PreprocessConfig::default()
        };
        let (h, w) = smart_resize(4000, 5000, &cfg).unwrap();
        assert!(u64::from(h) * u64::from(w) <= 1_003_520);
        assert_eq!((h % 28, w % 28), (0, 0));
    }

    #[test]
    fn invalid_config() {
        let cfg = PreprocessConfig {
            merge_size: 0,
            ..PreprocessConfig::default()
        };
        assert!(matches!(
            smart_resize(10, 10, &cfg),
            Err(PreprocessError::InvalidConfig(_))
        ));
        let cfg = PreprocessConfig {
            max_pixels: 0,
            ..PreprocessConfig::default()
        };
        assert!(matches!(
            smart_resize(10, 10, &cfg),
            Err(PreprocessError::InvalidConfig(_))
        ));
    }

    #[test]
    fn deserialize_legacy_json() {
        let json = r#"{
            "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14,
            "temporal_patch_size": 2, "merge_size": 2,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "Qwen2VLImageProcessor",
            "processor_class": "Qwen2VLProcessor"
        }"#;
        let cfg: PreprocessConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg, PreprocessConfig::default());
    }

    #[test]
    fn deserialize_v5_size_and_defaults() {
        let cfg: PreprocessConfig =
            serde_json::from_str(r#"{"size": {"shortest_edge": 100, "longest_edge": 2000}}"#)
                .unwrap();
        assert_eq!((cfg.min_pixels, cfg.max_pixels), (100, 2000));
        assert_eq!(cfg.patch_size, 14);
        let cfg: PreprocessConfig = serde_json::from_str(
            r#"{"size": {"shortest_edge": 100, "longest_edge": 2000}, "max_pixels": 5000}"#,
        )
        .unwrap();
        assert_eq!((cfg.min_pixels, cfg.max_pixels), (100, 5000));
        let cfg: PreprocessConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, PreprocessConfig::default());
    }
}
