//! The model's tokenizer (`tokenizer.json`, Hugging Face `tokenizers`).

use std::path::Path;

use crate::error::EngineError;
use crate::manifest::SpecialTokens;

/// A loaded tokenizer whose special tokens were checked against the manifest.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .finish()
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| EngineError::File {
            path: path.to_owned(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Ok(Self { inner })
    }

    /// Every disagreement between the tokenizer and the manifest's special tokens
    /// (a token missing from the tokenizer, or mapped to another id).
    pub fn special_token_problems(&self, tokens: &SpecialTokens) -> Vec<String> {
        tokens
            .named()
            .into_iter()
            .filter_map(|(name, id)| match self.inner.token_to_id(name) {
                Some(found) if found == id => None,
                Some(found) => Some(format!(
                    "special token {name} is id {found} in the tokenizer but {id} in the manifest"
                )),
                None => Some(format!("the tokenizer lacks the special token {name}")),
            })
            .collect()
    }

    /// Number of ids the tokenizer can produce (special tokens included).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Encodes text that may contain special tokens; no BOS is added (Qwen2 has none).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.inner
            .encode(text, true)
            .map(|enc| enc.get_ids().to_vec())
            .map_err(|e| EngineError::Input(format!("tokenizer: {e}")))
    }

    /// Decodes ids to text, special tokens included (the action markers are special).
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| EngineError::Input(format!("tokenizer: {e}")))
    }

    /// The `tokenizers` tokenizer underneath (for indexing its vocabulary).
    pub(crate) fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Turns a stream of token ids into text fragments, holding back bytes that do not
/// yet form complete UTF-8 (a byte-level BPE token can end inside a character).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    emitted: usize,
}

impl StreamDecoder {
    /// Adds a token; returns the new complete text, possibly empty.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String, EngineError> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        // An incomplete character decodes to U+FFFD at the end; wait for more tokens.
        if text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let fresh = text.get(self.emitted..).unwrap_or_default().to_owned();
        self.emitted = text.len();
        Ok(fresh)
    }

    /// The text still held back at the end of the stream (an incomplete character is
    /// then emitted as U+FFFD, as a whole decode would).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<String, EngineError> {
        let text = tokenizer.decode(&self.ids)?;
        let rest = text.get(self.emitted..).unwrap_or_default().to_owned();
        self.emitted = text.len();
        Ok(rest)
    }
}
