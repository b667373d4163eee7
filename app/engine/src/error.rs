//! The engine's error type: one enum, each variant saying what a user can do.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// ONNX Runtime could not be loaded.
    #[error(transparent)]
    Library(#[from] crate::ort_library::LibraryError),
    /// The manifest is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The requested execution provider is not in this build.
    #[error(transparent)]
    Provider(#[from] crate::provider::NotCompiledIn),
    /// A model file is missing or unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// ONNX Runtime rejected a graph or failed while running it.
    #[error("{graph}: {message}")]
    Onnx {
        /// Which graph (file name).
        graph: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The inputs do not fit the model (token counts, shapes, image sizes).
    #[error("{0}")]
    Input(String),
    /// Image preprocessing failed.
    #[error(transparent)]
    Preprocess(#[from] lumine_vision::PreprocessError),
    /// M-RoPE positions could not be computed.
    #[error(transparent)]
    Rope(#[from] crate::rope::RopeError),
    /// Constrained decoding could not finish a turn (a token budget too small for
    /// the grammar, or a vocabulary that cannot spell what the grammar requires).
    #[error("decoding: {0}")]
    Decode(String),
    /// The run was cancelled from another thread.
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    /// An ONNX Runtime failure in `graph`.
    pub(crate) fn onnx(graph: &str, err: impl std::fmt::Display) -> Self {
        Self::Onnx {
            graph: graph.to_owned(),
            message: err.to_string(),
        }
    }
}
