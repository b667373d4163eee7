//! Token accounting: what a frame and a piece of text cost in the prompt.

use std::sync::Arc;

/// Qwen2-VL resizes images to multiples of this many pixels (14 px patches,
/// merged 2x2), and each 28x28 block becomes one visual token.
pub const VISION_FACTOR: u32 = 28;

/// Tokens around each image besides its visual tokens: `<|vision_start|>`
/// and `<|vision_end|>`.
pub const FRAME_OVERHEAD_TOKENS: usize = 2;

/// Tokens the chat template adds per message: `<|im_start|>`, the role,
/// a newline, `<|im_end|>` and a newline.
pub const MESSAGE_OVERHEAD_TOKENS: usize = 5;

/// Counts the tokens of a text (the model's tokenizer, or an estimate).
pub type TokenCounter = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Visual tokens of a `width` x `height` frame: each side rounded to the
/// nearest multiple of [`VISION_FACTOR`] (as `smart_resize` does, at least
/// one block), one token per 28x28 block. 1280x720 gives 46 x 26 = 1196.
#[must_use]
pub fn frame_tokens(width: u32, height: u32) -> usize {
    let blocks = |side: u32| ((side + VISION_FACTOR / 2) / VISION_FACTOR).max(1) as usize;
    blocks(width) * blocks(height)
}

/// A tokenizer-free estimate of a text's tokens, erring high: one token per
/// four ASCII bytes (English BPE averages about that) plus one per other
/// character (CJK text is about one token per character).
#[must_use]
pub fn estimate_text_tokens(text: &str) -> usize {
    let ascii = text.bytes().filter(u8::is_ascii).count();
    let other = text.chars().filter(|c| !c.is_ascii()).count();
    ascii.div_ceil(4) + other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_tokens_match_spec() {
        assert_eq!(frame_tokens(1280, 720), 1196);
        assert_eq!(frame_tokens(224, 112), 8 * 4);
        assert_eq!(frame_tokens(1, 1), 1);
    }

    #[test]
    fn estimates_err_high() {
        assert_eq!(estimate_text_tokens(""), 0);
        assert_eq!(estimate_text_tokens("abcd"), 1);
        assert_eq!(estimate_text_tokens("abcde"), 2);
        assert_eq!(estimate_text_tokens("前方有敌人"), 5);
    }
}
