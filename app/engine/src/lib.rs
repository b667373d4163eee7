//! Runs a Qwen2-VL-architecture policy model through ONNX Runtime.
//!
//! The model directory layout and the numerics follow `../shared/SPEC.md` section 6
//! and `../shared/QWEN2VL.md`; the exporter that writes such directories lives in
//! `models/export/`.
//!
//! - [`ort_library`] finds and loads the ONNX Runtime library; [`provider`] picks the
//!   execution provider.
//! - [`manifest`] reads `manifest.ron`; [`model::Model`] opens the three graphs.
//! - [`chat`], [`tokenizer`] and [`rope`] turn messages into token ids and M-RoPE
//!   positions; [`generate`] runs prefill and decoding with a [`kv_cache::KvCache`].
//! - Real-time decoding for the agent: [`constrained`] compiles the action grammar
//!   against the vocabulary into token masks, [`speculative`] decodes a turn under
//!   them with draft-free speculation, [`session::AgentSession`] keeps the KV cache
//!   of the unchanged context from step to step (with exact or StreamingLLM
//!   eviction), and [`bench`] measures all of it (`lumine bench decode`).
//! - [`partition`] runs a tensor-parallel export (`manifest.partitions > 1`): one
//!   thread and session per rank in lock-step, the `ai.lumine.AllReduceSum`
//!   reduction as a custom operator over shared memory.

pub mod bench;
pub mod chat;
pub mod check;
pub mod constrained;
pub mod error;
pub mod generate;
pub mod image_io;
pub mod kv_cache;
pub mod manifest;
pub mod model;
pub mod ort_library;
pub mod partition;
pub mod provider;
pub mod rope;
pub mod sampler;
pub mod session;
pub mod speculative;
pub mod tokenizer;

pub use error::EngineError;
pub use model::{CancelToken, Model};
