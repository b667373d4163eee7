//! Runs a Qwen2-VL-architecture policy model through ONNX Runtime.
//!
//! The model directory layout and the numerics follow `../shared/SPEC.md` section 6
//! and `../shared/QWEN2VL.md`; the exporter that writes such directories lives in
//! `models/export/`.

pub mod chat;
pub mod manifest;
pub mod ort_library;
pub mod provider;
pub mod rope;
