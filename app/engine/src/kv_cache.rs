//! The decoder's key/value cache: one (key, value) pair of ONNX Runtime values per
//! layer, each `[1, kv_heads, len, head_dim]`, keys stored after RoPE (as the
//! reference caches them).
//!
//! The values the decoder returns are fed straight back as the next call's inputs,
//! so a decode step copies nothing. Editing the cache ([`KvCache::truncate`] after
//! a rejected speculation, [`KvCache::remove_range`] on eviction,
//! [`KvCache::rotate_keys`] to re-position what follows an evicted step) copies the
//! kept entries into new tensors: the tensors are ONNX Runtime values in CPU
//! memory, and a copy of the kept part costs about what the decoder itself spends
//! concatenating past and present on every call.

use std::ops::Range;

use ort::value::{DynValue, Tensor};

use crate::error::EngineError;
use crate::rope::RopeTable;

/// Past keys and values of every layer.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(DynValue, DynValue)>,
    len: usize,
    kv_heads: usize,
    head_dim: usize,
}

impl KvCache {
    /// A cache holding no tokens.
    pub fn empty(num_layers: usize, kv_heads: usize, head_dim: usize) -> Result<Self, EngineError> {
        let zero = || -> Result<DynValue, EngineError> {
            Tensor::<f32>::from_array(([1, kv_heads, 0, head_dim], Vec::<f32>::new()))
                .map(Tensor::into_dyn)
                .map_err(|e| EngineError::onnx("kv cache", e))
        };
        let layers = (0..num_layers)
            .map(|_| Ok((zero()?, zero()?)))
            .collect::<Result<_, EngineError>>()?;
        Ok(Self {
            layers,
            len: 0,
            kv_heads,
            head_dim,
        })
    }

    /// Tokens held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The per-layer (key, value) values, in layer order.
    pub fn layers(&self) -> impl Iterator<Item = (&DynValue, &DynValue)> {
        self.layers.iter().map(|(k, v)| (k, v))
    }

    /// Per-head size.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Keeps the first `len` tokens and drops the rest (a rejected speculation).
    pub fn truncate(&mut self, len: usize) -> Result<(), EngineError> {
        if len >= self.len {
            return Ok(());
        }
        self.remove_range(len..self.len)
    }

    /// Drops the tokens in `range` (an evicted step); the ones after it move down.
    /// Their keys keep their rotation: see [`KvCache::rotate_keys`].
    pub fn remove_range(&mut self, range: Range<usize>) -> Result<(), EngineError> {
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        if start == end {
            return Ok(());
        }
        let (old_len, new_len) = (self.len, self.len - (end - start));
        let (heads, hd) = (self.kv_heads, self.head_dim);
        let edit = |tensor: &DynValue| -> Result<DynValue, EngineError> {
            let (_, data) = tensor
                .try_extract_tensor::<f32>()
                .map_err(|e| EngineError::onnx("kv cache", e))?;
            let mut kept = Vec::with_capacity(heads * new_len * hd);
            for head in data.chunks_exact(old_len * hd).take(heads) {
                kept.extend_from_slice(&head[..start * hd]);
                kept.extend_from_slice(&head[end * hd..]);
            }
            Tensor::<f32>::from_array(([1, heads, new_len, hd], kept))
                .map(Tensor::into_dyn)
                .map_err(|e| EngineError::onnx("kv cache", e))
        };
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| Ok((edit(k)?, edit(v)?)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        self.layers = layers;
        self.len = new_len;
        Ok(())
    }

    /// Rotates the cached keys of tokens `from..` as if their M-RoPE positions had
    /// moved by `shift` (t, h, w); values carry no position and stay as they are.
    ///
    /// The keys are stored after RoPE, so re-positioning them after an eviction
    /// (StreamingLLM) is one more rotation per rotary pair ([`RopeTable::rotate`]).
    pub fn rotate_keys(
        &mut self,
        from: usize,
        table: &RopeTable,
        shift: [i64; 3],
    ) -> Result<(), EngineError> {
        if from >= self.len || shift == [0, 0, 0] {
            return Ok(());
        }
        if table.head_dim() != self.head_dim {
            return Err(EngineError::Input(format!(
                "rotary table for head size {} used on a cache with head size {}",
                table.head_dim(),
                self.head_dim
            )));
        }
        let (len, hd) = (self.len, self.head_dim);
        for (key, _) in &mut self.layers {
            let (_, data) = key
                .try_extract_tensor_mut::<f32>()
                .map_err(|e| EngineError::onnx("kv cache", e))?;
            for head in data.chunks_exact_mut(len * hd) {
                table.rotate(&mut head[from * hd..], shift);
            }
        }
        Ok(())
    }

    /// A copy of layer `layer`'s keys (`key == true`) or values, `[kv_heads, len, head_dim]`
    /// flattened; for tests and diagnostics.
    pub fn layer_data(&self, layer: usize, key: bool) -> Result<Vec<f32>, EngineError> {
        let (k, v) = self
            .layers
            .get(layer)
            .ok_or_else(|| EngineError::Input(format!("kv cache has no layer {layer}")))?;
        let (_, data) = if key { k } else { v }
            .try_extract_tensor::<f32>()
            .map_err(|e| EngineError::onnx("kv cache", e))?;
        Ok(data.to_vec())
    }

    /// Moves the per-layer values out (the rank executor hands them to the rank
    /// threads); [`KvCache::restore_layers`] puts them back.
    pub(crate) fn take_layers(&mut self) -> Vec<(DynValue, DynValue)> {
        std::mem::take(&mut self.layers)
    }

    /// Puts back what [`KvCache::take_layers`] took (empty: the cache was lost and
    /// the next forward pass reports it).
    pub(crate) fn restore_layers(&mut self, layers: Vec<(DynValue, DynValue)>) {
        self.layers = layers;
    }

    /// Takes the decoder's `present` outputs as the new cache of `len` tokens,
    /// checking their shape.
    pub(crate) fn replace(
        &mut self,
        present: Vec<(DynValue, DynValue)>,
        len: usize,
    ) -> Result<(), EngineError> {
        if present.len() != self.layers.len() {
            return Err(EngineError::Input(format!(
                "decoder returned {} present pairs for {} layers",
                present.len(),
                self.layers.len()
            )));
        }
        let expected = [1, self.kv_heads as i64, len as i64, self.head_dim as i64];
        for (key, value) in &present {
            for tensor in [key, value] {
                let (shape, _) = tensor
                    .try_extract_tensor::<f32>()
                    .map_err(|e| EngineError::onnx("kv cache", e))?;
                if **shape != expected {
                    return Err(EngineError::Input(format!(
                        "decoder returned a present tensor of shape {shape:?}, expected {expected:?}"
                    )));
                }
            }
        }
        self.layers = present;
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of `len` tokens whose entry (layer, head, token, d) encodes its indices.
    fn filled(layers: usize, heads: usize, len: usize, hd: usize) -> KvCache {
        // Tensors are ONNX Runtime values: the library must be loaded.
        crate::ort_library::load(None).unwrap();
        let mut cache = KvCache::empty(layers, heads, hd).unwrap();
        let present = (0..layers)
            .map(|l| {
                let make = |kind: usize| {
                    let data: Vec<f32> = (0..heads * len * hd)
                        .map(|i| {
                            let (h, t, d) = (i / (len * hd), i / hd % len, i % hd);
                            (kind * 10000 + l * 1000 + h * 100 + t) as f32 + d as f32 * 1e-3
                        })
                        .collect();
                    Tensor::<f32>::from_array(([1, heads, len, hd], data))
                        .unwrap()
                        .into_dyn()
                };
                (make(0), make(1))
            })
            .collect();
        cache.replace(present, len).unwrap();
        cache
    }

    fn token_of(value: f32) -> usize {
        (value.floor() as usize) % 100
    }

    #[test]
    fn truncate_and_remove_keep_the_right_tokens_per_head() {
        let mut cache = filled(2, 3, 10, 4);
        cache.remove_range(2..5).unwrap();
        assert_eq!(cache.len(), 7);
        let data = cache.layer_data(1, false).unwrap();
        let tokens: Vec<usize> = data.chunks_exact(4).map(|v| token_of(v[0])).collect();
        let per_head = [0, 1, 5, 6, 7, 8, 9];
        let expected: Vec<usize> = (0..3).flat_map(|_| per_head).collect();
        assert_eq!(tokens, expected);
        // Head and layer survive too.
        assert_eq!(data[7 * 4] as usize / 100 % 10, 1);
        cache.truncate(3).unwrap();
        let data = cache.layer_data(0, true).unwrap();
        let tokens: Vec<usize> = data.chunks_exact(4).map(|v| token_of(v[0])).collect();
        assert_eq!(tokens, [0, 1, 5, 0, 1, 5, 0, 1, 5]);
        cache.truncate(5).unwrap();
        assert_eq!(cache.len(), 3);
        cache.truncate(0).unwrap();
        assert!(cache.is_empty());
    }

    #[test]
    fn rotation_touches_only_keys_from_the_given_token() {
        let mut cache = filled(1, 2, 4, 4);
        let before_k = cache.layer_data(0, true).unwrap();
        let before_v = cache.layer_data(0, false).unwrap();
        let table = RopeTable::new(4, 1e4, &[1, 1, 0]);
        cache.rotate_keys(2, &table, [3, 3, 3]).unwrap();
        let after_k = cache.layer_data(0, true).unwrap();
        assert_eq!(cache.layer_data(0, false).unwrap(), before_v);
        for (i, (a, b)) in before_k.iter().zip(&after_k).enumerate() {
            let token = i / 4 % 4;
            if token < 2 {
                assert_eq!(a, b);
            }
        }
        assert_ne!(before_k[2 * 4..4 * 4], after_k[2 * 4..4 * 4]);
        cache.rotate_keys(2, &table, [-3, -3, -3]).unwrap();
        for (a, b) in before_k.iter().zip(&cache.layer_data(0, true).unwrap()) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0));
        }
    }
}
