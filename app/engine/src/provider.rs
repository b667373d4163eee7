//! Execution providers, chosen in one place.
//!
//! A GPU provider that was asked for and cannot start is an error carrying ONNX
//! Runtime's reason, unless the operator explicitly allowed a CPU fallback: a silent
//! fallback would hide a broken GPU setup behind a model that is 50x slower.

use std::path::PathBuf;

pub use lumine_config::ExecutionProvider;

/// Options for the GPU providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Which provider.
    pub provider: ExecutionProvider,
    /// CUDA device id (one per tensor-parallel rank).
    pub device_id: u32,
    /// TensorRT: build fp16 engines.
    pub fp16: bool,
    /// TensorRT: folder where built engines are cached between runs.
    pub engine_cache: Option<PathBuf>,
    /// Run on the CPU if the requested GPU provider cannot start.
    pub allow_cpu_fallback: bool,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        Self {
            provider: ExecutionProvider::Cpu,
            device_id: 0,
            fp16: false,
            engine_cache: None,
            allow_cpu_fallback: false,
        }
    }
}

/// Whether this build can use a provider at all (compiled in with its cargo feature).
pub fn compiled_in(provider: ExecutionProvider) -> bool {
    match provider {
        ExecutionProvider::Cpu => true,
        ExecutionProvider::Cuda => cfg!(feature = "cuda"),
        ExecutionProvider::TensorRt => cfg!(feature = "tensorrt"),
    }
}

/// Providers the loaded ONNX Runtime library reports as available, among those this
/// build knows (the GPU ones need their cargo feature and the onnxruntime-gpu library);
/// requires [`crate::ort_library::load`] first.
pub fn available_in_library() -> Vec<&'static str> {
    // Mutated only when a GPU feature is compiled in.
    #[cfg_attr(not(any(feature = "cuda", feature = "tensorrt")), allow(unused_mut))]
    let mut names = vec!["CPU"];
    #[cfg(feature = "cuda")]
    {
        use ort::ep::ExecutionProvider as _;
        if ort::ep::CUDA::is_available().unwrap_or(false) {
            names.push("CUDA");
        }
    }
    #[cfg(feature = "tensorrt")]
    {
        use ort::ep::ExecutionProvider as _;
        if ort::ep::TensorRT::is_available().unwrap_or(false) {
            names.push("TensorRT");
        }
    }
    names
}

/// Why the requested provider cannot be used by this build at all.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the {0} execution provider is not compiled into this build; rebuild with `--features {feature}` \
     and provision the GPU library with scripts/setup-onnxruntime --gpu",
    feature = feature_name(*.0)
)]
pub struct NotCompiledIn(pub ExecutionProvider);

fn feature_name(provider: ExecutionProvider) -> &'static str {
    match provider {
        ExecutionProvider::Cpu => "",
        ExecutionProvider::Cuda => "cuda",
        ExecutionProvider::TensorRt => "tensorrt",
    }
}

/// The `ort` dispatch list for these options: the requested provider first, set to
/// fail loudly unless a CPU fallback is allowed. Empty for the CPU (ONNX Runtime's
/// default). A GPU provider this build lacks is an error even with the fallback
/// allowed: the operator asked for something this binary cannot do.
pub fn dispatch(
    options: &ProviderOptions,
) -> Result<Vec<ort::ep::ExecutionProviderDispatch>, NotCompiledIn> {
    #[cfg(any(feature = "cuda", feature = "tensorrt"))]
    let finish = |ep: ort::ep::ExecutionProviderDispatch| {
        if options.allow_cpu_fallback {
            ep
        } else {
            ep.error_on_failure()
        }
    };
    #[cfg(any(feature = "cuda", feature = "tensorrt"))]
    let device_id = i32::try_from(options.device_id).unwrap_or(i32::MAX);
    match options.provider {
        ExecutionProvider::Cpu => Ok(Vec::new()),
        #[cfg(feature = "cuda")]
        ExecutionProvider::Cuda => Ok(vec![finish(
            ort::ep::CUDA::default().with_device_id(device_id).build(),
        )]),
        #[cfg(feature = "tensorrt")]
        ExecutionProvider::TensorRt => {
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(device_id)
                .with_fp16(options.fp16);
            if let Some(dir) = &options.engine_cache {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display().to_string());
            }
            // Nodes TensorRT cannot take run on CUDA, as ONNX Runtime recommends.
            Ok(vec![
                finish(trt.build()),
                finish(ort::ep::CUDA::default().with_device_id(device_id).build()),
            ])
        }
        #[allow(unreachable_patterns)] // reachable only when a GPU feature is off
        other => Err(NotCompiledIn(other)),
    }
}
