//! `lumine doctor`: what this machine offers Lumine, and what is missing.

use std::path::Path;
use std::process::ExitCode;

use lumine_engine::{ort_library, provider};

/// Prints one line per fact; exits 1 when something required is missing.
pub fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let mut healthy = true;
    println!("lumine {}", env!("CARGO_PKG_VERSION"));

    let config = match lumine_config::load_or_create(config_path) {
        Ok(config) => {
            println!("config:            {} (ok)", config_path.display());
            Some(config)
        }
        Err(err) => {
            healthy = false;
            println!("config:            {err}");
            None
        }
    };

    let configured = config
        .as_ref()
        .and_then(|c| c.onnxruntime_library.as_deref());
    match ort_library::load(configured) {
        Ok(runtime) => {
            println!(
                "onnxruntime:       {} (version {}, expected {})",
                runtime.path.display(),
                runtime.version,
                ort_library::EXPECTED_VERSION
            );
            println!(
                "providers:         {}",
                provider::available_in_library().join(", ")
            );
        }
        Err(err) => {
            healthy = false;
            println!("onnxruntime:       {err}");
        }
    }
    let compiled: Vec<String> = [
        provider::ExecutionProvider::Cpu,
        provider::ExecutionProvider::Cuda,
        provider::ExecutionProvider::TensorRt,
    ]
    .into_iter()
    .filter(|&p| provider::compiled_in(p))
    .map(|p| p.to_string())
    .collect();
    println!("providers built:   {}", compiled.join(", "));
    if let Some(config) = &config {
        println!(
            "provider chosen:   {} (devices {:?}, cpu fallback {})",
            config.execution_provider,
            config.devices,
            if config.allow_cpu_fallback {
                "allowed"
            } else {
                "off"
            }
        );
    }

    let display = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty());
    let wayland = std::env::var("WAYLAND_DISPLAY")
        .ok()
        .filter(|d| !d.is_empty());
    println!(
        "display:           {}",
        match (display, wayland) {
            (Some(x), _) => format!("X11 {x}"),
            (None, Some(w)) =>
                format!("Wayland {w} (no X11 DISPLAY: capture and injection need X11)"),
            (None, None) =>
                "none (no DISPLAY): the console, capture and injection need one".to_owned(),
        }
    );
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
