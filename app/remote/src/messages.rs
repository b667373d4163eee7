//! The context window as OpenAI chat messages, frames as JPEG or PNG data URLs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use image::ExtendedColorType;
use image::ImageEncoder as _;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use lumine_action::{ACTION_END, ACTION_START, KeyVocabulary, THOUGHT_END, THOUGHT_START};
use lumine_context::{ChatMessage, Part, Role};
use lumine_runtime::policy::{PolicyError, SharedFrame};
use lumine_vision::RgbImage;
use serde_json::{Value, json};

use crate::FrameFormat;

/// Encodes a frame as `data:image/jpeg;base64,...`.
///
/// # Errors
/// The JPEG encoder failed.
pub fn encode_jpeg_data_url(frame: &RgbImage, quality: u8) -> Result<String, String> {
    data_url(frame, "jpeg", |out| {
        JpegEncoder::new_with_quality(out, quality.clamp(1, 100)).encode(
            &frame.data,
            frame.width,
            frame.height,
            ExtendedColorType::Rgb8,
        )
    })
}

/// Encodes a frame as `data:image/png;base64,...`: lossless, so the server
/// sees exactly the pixels the embedded engine would.
///
/// # Errors
/// The PNG encoder failed.
pub fn encode_png_data_url(frame: &RgbImage) -> Result<String, String> {
    data_url(frame, "png", |out| {
        PngEncoder::new(out).write_image(
            &frame.data,
            frame.width,
            frame.height,
            ExtendedColorType::Rgb8,
        )
    })
}

/// `data:image/{kind};base64,...` of what `encode` writes for `frame`.
fn data_url(
    frame: &RgbImage,
    kind: &str,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), image::ImageError>,
) -> Result<String, String> {
    let mut bytes = Vec::new();
    encode(&mut bytes).map_err(|e| {
        format!(
            "{} encoding of a {}x{} frame: {e}",
            kind.to_uppercase(),
            frame.width,
            frame.height
        )
    })?;
    let prefix = format!("data:image/{kind};base64,");
    let mut url = String::with_capacity(prefix.len() + bytes.len() * 4 / 3 + 4);
    url.push_str(&prefix);
    base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut url);
    Ok(url)
}

/// Encodes a frame as a data URL in `format`.
///
/// # Errors
/// The encoder failed.
pub fn encode_frame_data_url(frame: &RgbImage, format: FrameFormat) -> Result<String, String> {
    match format {
        FrameFormat::Jpeg { quality } => encode_jpeg_data_url(frame, quality),
        FrameFormat::Png => encode_png_data_url(frame),
    }
}

/// Renders the context's messages. Frames are encoded once and kept in
/// `cache` (by `Arc` address) for as long as they stay in the window, so the
/// same frame always gives the same bytes.
pub(crate) fn to_openai_messages(
    messages: &[ChatMessage<SharedFrame>],
    cache: &mut HashMap<usize, (SharedFrame, Arc<str>)>,
    format: FrameFormat,
) -> Result<Value, PolicyError> {
    let mut live = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let text = |m: &ChatMessage<SharedFrame>| -> String {
            m.parts
                .iter()
                .filter_map(|p| match p {
                    Part::Text(t) => Some(t.as_str()),
                    Part::Frame(_) => None,
                })
                .collect()
        };
        match m.role {
            Role::System | Role::Assistant => {
                let content = text(m);
                if m.role == Role::System && content.is_empty() {
                    continue;
                }
                out.push(json!({ "role": m.role.as_str(), "content": content }));
            }
            Role::User => {
                let mut parts = Vec::with_capacity(m.parts.len());
                for part in &m.parts {
                    match part {
                        Part::Text(t) => parts.push(json!({ "type": "text", "text": t })),
                        Part::Frame(frame) => {
                            let key = Arc::as_ptr(frame) as usize;
                            live.push(key);
                            let url = match cache.get(&key) {
                                Some((_, url)) => Arc::clone(url),
                                None => {
                                    let url: Arc<str> = encode_frame_data_url(frame, format)
                                        .map_err(|e| PolicyError::Failed(format!("remote: {e}")))?
                                        .into();
                                    cache.insert(key, (Arc::clone(frame), Arc::clone(&url)));
                                    url
                                }
                            };
                            parts.push(
                                json!({ "type": "image_url", "image_url": { "url": &*url } }),
                            );
                        }
                    }
                }
                out.push(json!({ "role": "user", "content": parts }));
            }
        }
    }
    // Frames that left the window are forgotten (their Arcs released).
    cache.retain(|key, _| live.contains(key));
    Ok(Value::Array(out))
}

/// A regular expression of one turn in the action language over `vocab`'s
/// key names (for the server's guided decoding; the client still parses).
#[must_use]
pub fn action_regex(vocab: &KeyVocabulary, allow_thought: bool) -> String {
    let mut names: Vec<&str> = vocab.entries().map(|(name, _)| name).collect();
    // Longest first, so a name is not cut short by its prefix.
    names.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    let key = format!(
        "({})",
        names
            .iter()
            .map(|n| regex_escape(n))
            .collect::<Vec<_>>()
            .join("|")
    );
    let mut re = String::new();
    if allow_thought {
        let _ = write!(
            re,
            "({}[^<]{{0,256}}{})?",
            regex_escape(THOUGHT_START),
            regex_escape(THOUGHT_END)
        );
    }
    let _ = write!(
        re,
        "{}-?[0-9]{{1,3}} -?[0-9]{{1,3}} -?[0-5]( ;( {key}( {key}){{0,3}})?){{6}}{}",
        regex_escape(ACTION_START),
        regex_escape(ACTION_END)
    );
    re
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
