//! `lumine model check`: every problem with a model directory, not just the first.
//!
//! Opens each graph on the CPU provider (which also catches truncated or corrupt
//! files) and compares its inputs and outputs with what the engine will feed and
//! read; checks the tokenizer against the manifest's special tokens and vocabulary,
//! and the key vocabulary file.

use std::path::Path;

use ort::session::Session;
use ort::value::ValueType;

use crate::manifest::Manifest;
use crate::ort_library;
use crate::provider::{self, ProviderOptions};
use crate::tokenizer::Tokenizer;

/// An expected graph input or output: name and rank.
struct Port {
    name: String,
    rank: usize,
}

fn port(name: impl Into<String>, rank: usize) -> Port {
    Port {
        name: name.into(),
        rank,
    }
}

/// Checks the model in `dir`; an empty list means it is usable.
pub fn check_model_dir(dir: &Path, ort_library_path: Option<&Path>) -> Vec<String> {
    let manifest = match Manifest::load(dir) {
        Ok(m) => m,
        Err(e) => return vec![e.to_string()],
    };
    let mut problems = Vec::new();

    match Tokenizer::load(&dir.join(&manifest.tokenizer)) {
        Ok(tokenizer) => {
            problems.extend(tokenizer.special_token_problems(&manifest.tokens));
            if tokenizer.vocab_size() > manifest.text.vocab_size {
                problems.push(format!(
                    "{}: the tokenizer has {} tokens but the model's vocabulary (logits) has {}",
                    manifest.tokenizer,
                    tokenizer.vocab_size(),
                    manifest.text.vocab_size
                ));
            }
        }
        Err(e) => problems.push(e.to_string()),
    }

    let keys_path = dir.join(&manifest.key_vocabulary);
    match std::fs::read_to_string(&keys_path) {
        Ok(text) => {
            if let Err(e) = lumine_action::KeyVocabulary::from_ron(&text) {
                problems.push(format!("{}: {e}", keys_path.display()));
            }
        }
        Err(e) => problems.push(format!("{}: {e}", keys_path.display())),
    }

    let runtime = match ort_library::load(ort_library_path) {
        Ok(runtime) => runtime,
        Err(e) => {
            problems.push(e.to_string());
            return problems;
        }
    };
    let layers = manifest.text.num_layers;
    let mut decoder_inputs = vec![
        port("inputs_embeds", 3),
        port("attention_mask", 2),
        port("position_ids", 3),
    ];
    let mut decoder_outputs = vec![port("logits", 3)];
    for i in 0..layers {
        for part in ["key", "value"] {
            decoder_inputs.push(port(format!("past_key_values.{i}.{part}"), 4));
            decoder_outputs.push(port(format!("present.{i}.{part}"), 4));
        }
    }
    let graphs = [
        (
            &manifest.graphs.vision_encoder,
            vec![port("pixel_values", 2), port("grid_thw", 2)],
            vec![port("image_features", 2)],
        ),
        (
            &manifest.graphs.embed_tokens,
            vec![port("input_ids", 2)],
            vec![port("inputs_embeds", 3)],
        ),
        (&manifest.graphs.decoder, decoder_inputs, decoder_outputs),
    ];
    // A partitioned decoder's rank graphs need the reduction operator to load.
    let partitioned = manifest.partitions > 1;
    if partitioned {
        problems.extend(crate::partition::check_rank_graphs(dir, &manifest, runtime));
    }
    for (file, inputs, outputs) in graphs {
        if partitioned && file == &manifest.graphs.decoder {
            continue;
        }
        let path = dir.join(file);
        if !path.is_file() {
            problems.push(format!("{file}: graph file is missing"));
            continue;
        }
        let session = provider::dispatch(&ProviderOptions::default())
            .map_err(|e| e.to_string())
            .and_then(|eps| {
                Session::builder(&runtime.environment)
                    .map_err(|e| e.to_string())?
                    .with_execution_providers(eps)
                    .map_err(|e| e.to_string())?
                    .commit_from_file(&path)
                    .map_err(|e| e.to_string())
            });
        match session {
            Ok(session) => {
                compare_ports(file, "input", session.inputs(), &inputs, &mut problems);
                compare_ports(file, "output", session.outputs(), &outputs, &mut problems);
                if file == &manifest.graphs.decoder {
                    check_vocab_dim(file, &session, manifest.text.vocab_size, &mut problems);
                }
                if file == &manifest.graphs.vision_encoder {
                    check_pixel_columns(file, &session, &manifest.vision, &mut problems);
                }
            }
            Err(e) => problems.push(format!(
                "{file}: ONNX Runtime cannot load it ({e}); the file may be truncated or corrupt: re-export the model"
            )),
        }
    }
    problems
}

fn compare_ports(
    file: &str,
    kind: &str,
    actual: &[ort::value::Outlet],
    expected: &[Port],
    problems: &mut Vec<String>,
) {
    for want in expected {
        match actual.iter().find(|o| o.name() == want.name) {
            None => {
                let names: Vec<&str> = actual.iter().map(ort::value::Outlet::name).collect();
                problems.push(format!(
                    "{file}: {kind} {:?} is missing (the graph has {names:?}); was the graph renamed or exported by another tool?",
                    want.name
                ));
            }
            Some(outlet) => {
                if let ValueType::Tensor { shape, .. } = outlet.dtype()
                    && shape.len() != want.rank
                {
                    problems.push(format!(
                        "{file}: {kind} {:?} has rank {}, expected {}",
                        want.name,
                        shape.len(),
                        want.rank
                    ));
                }
            }
        }
    }
}

fn check_vocab_dim(file: &str, session: &Session, vocab: usize, problems: &mut Vec<String>) {
    let Some(logits) = session.outputs().iter().find(|o| o.name() == "logits") else {
        return;
    };
    if let ValueType::Tensor { shape, .. } = logits.dtype()
        && let Some(&last) = shape.last()
        && last >= 0
        && last as usize != vocab
    {
        problems.push(format!(
            "{file}: logits have {last} entries per token but the manifest says vocab_size {vocab}"
        ));
    }
}

/// The vision graph's `pixel_values` width against the manifest's layout: a
/// graph exported with the temporal kernel folded takes `3 · P²` columns, an
/// older one `3 · T · P²`; the flag and the graph must agree.
fn check_pixel_columns(
    file: &str,
    session: &Session,
    vision: &crate::manifest::VisionConfig,
    problems: &mut Vec<String>,
) {
    let Some(pixels) = session.inputs().iter().find(|o| o.name() == "pixel_values") else {
        return;
    };
    let want = vision.pixel_columns();
    if let ValueType::Tensor { shape, .. } = pixels.dtype()
        && let Some(&cols) = shape.get(1)
        && cols >= 0
        && cols as usize != want
    {
        problems.push(format!(
            "{file}: pixel_values have {cols} columns but the manifest's vision section \
             (temporal_folded: {}) means {want}; re-export the model or fix `temporal_folded`",
            vision.temporal_folded
        ));
    }
}
