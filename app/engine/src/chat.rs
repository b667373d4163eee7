//! Chat messages and the Qwen2-VL chat template.
//!
//! Renders exactly what the 7B-Instruct `chat_template.json` renders
//! (`../shared/QWEN2VL.md` §4): a default system message when none is given,
//! `<|im_start|>{role}\n{content}<|im_end|>\n` per message, images as
//! `<|vision_start|><|image_pad|><|vision_end|>`, then the generation prompt. The
//! k-th `<|image_pad|>` is expanded to the image's token count before tokenising,
//! as the processor does.

use std::path::PathBuf;

use serde::Deserialize;

/// The system message the template inserts when the conversation has none.
pub const DEFAULT_SYSTEM: &str = "You are a helpful assistant.";

/// Text form of the image placeholder token.
pub const IMAGE_PAD: &str = "<|image_pad|>";

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image file (relative paths are resolved against the messages file's folder).
    Image {
        /// Where the image is.
        path: PathBuf,
    },
}

/// Message content: a plain string or a list of parts (OpenAI style).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// A plain string.
    Text(String),
    /// Text and image parts in order.
    Parts(Vec<ContentPart>),
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: Content,
}

impl Message {
    /// The content as parts.
    pub fn parts(&self) -> Vec<ContentPart> {
        match &self.content {
            Content::Text(text) => vec![ContentPart::Text { text: text.clone() }],
            Content::Parts(parts) => parts.clone(),
        }
    }
}

/// Renders the conversation with the generation prompt, leaving one `<|image_pad|>`
/// per image (see [`expand_image_pads`]).
pub fn render(messages: &[Message]) -> String {
    let mut out = String::new();
    if messages.first().is_none_or(|m| m.role != "system") {
        out.push_str("<|im_start|>system\n");
        out.push_str(DEFAULT_SYSTEM);
        out.push_str("<|im_end|>\n");
    }
    for message in messages {
        out.push_str("<|im_start|>");
        out.push_str(&message.role);
        out.push('\n');
        match &message.content {
            Content::Text(text) => out.push_str(text),
            Content::Parts(parts) => {
                for part in parts {
                    match part {
                        ContentPart::Text { text } => out.push_str(text),
                        ContentPart::Image { .. } => {
                            out.push_str("<|vision_start|>");
                            out.push_str(IMAGE_PAD);
                            out.push_str("<|vision_end|>");
                        }
                    }
                }
            }
        }
        out.push_str("<|im_end|>\n");
    }
    out.push_str("<|im_start|>assistant\n");
    out
}

/// Replaces the k-th `<|image_pad|>` with `tokens_per_image[k]` copies of itself.
/// Returns `None` when the counts disagree with the placeholders.
pub fn expand_image_pads(rendered: &str, tokens_per_image: &[usize]) -> Option<String> {
    let pieces: Vec<&str> = rendered.split(IMAGE_PAD).collect();
    if pieces.len() != tokens_per_image.len() + 1 {
        return None;
    }
    let extra: usize = tokens_per_image.iter().sum::<usize>() * IMAGE_PAD.len();
    let mut out = String::with_capacity(rendered.len() + extra);
    for (i, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        if let Some(&n) = tokens_per_image.get(i) {
            for _ in 0..n {
                out.push_str(IMAGE_PAD);
            }
        }
    }
    Some(out)
}

/// The image paths of a conversation, in prompt order.
pub fn image_paths(messages: &[Message]) -> Vec<PathBuf> {
    messages
        .iter()
        .flat_map(Message::parts)
        .filter_map(|part| match part {
            ContentPart::Image { path } => Some(path),
            ContentPart::Text { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(parts: Vec<ContentPart>) -> Message {
        Message {
            role: "user".to_owned(),
            content: Content::Parts(parts),
        }
    }

    #[test]
    fn system_and_image_text_turn() {
        let messages = vec![
            Message {
                role: "system".to_owned(),
                content: Content::Text("SYS".to_owned()),
            },
            user(vec![
                ContentPart::Image {
                    path: "a.png".into(),
                },
                ContentPart::Text {
                    text: "TEXT".to_owned(),
                },
            ]),
        ];
        assert_eq!(
            render(&messages),
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>TEXT<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(image_paths(&messages), vec![PathBuf::from("a.png")]);
    }

    #[test]
    fn default_system_is_prepended() {
        let messages = vec![Message {
            role: "user".to_owned(),
            content: Content::Text("hi".to_owned()),
        }];
        assert!(render(&messages).starts_with(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi"
        ));
    }

    #[test]
    fn pads_expand_per_image() {
        let s = "a<|image_pad|>b<|image_pad|>c";
        assert_eq!(
            expand_image_pads(s, &[2, 1]).unwrap(),
            "a<|image_pad|><|image_pad|>b<|image_pad|>c"
        );
        assert_eq!(expand_image_pads(s, &[2]), None);
    }

    #[test]
    fn openai_style_json_shapes_deserialise() {
        let json = r#"[{"role":"system","content":"S"},
            {"role":"user","content":[{"type":"image","path":"f.png"},{"type":"text","text":"go"}]}]"#;
        let messages: Vec<Message> = serde_json::from_str(json).unwrap();
        assert_eq!(messages[0].content, Content::Text("S".to_owned()));
        assert_eq!(messages[1].parts().len(), 2);
        let bad = r#"[{"role":"user","content":[{"type":"video","path":"v.mp4"}]}]"#;
        assert!(serde_json::from_str::<Vec<Message>>(bad).is_err());
    }
}
