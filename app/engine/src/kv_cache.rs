//! The decoder's key/value cache: one (key, value) pair of ONNX Runtime values per
//! layer, each `[1, kv_heads, len, head_dim]`, keys stored after RoPE (as the
//! reference caches them).
//!
//! The values the decoder returns are fed straight back as the next call's inputs,
//! so a decode step copies nothing.

use ort::value::{DynValue, Tensor};

use crate::error::EngineError;

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
