//! [`ScriptPolicy`]: one action string per line, played step by step.

use std::fmt;
use std::path::Path;

use lumine_action::{KeyVocabulary, StreamEvent, Turn, parse_turn};

use super::{Observation, Policy, PolicyError, stream_turn};

/// A script that cannot be played. Nothing of an invalid script is played,
/// not even its valid lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Lines that are not valid turns.
    #[error("{}", InvalidLines(.0))]
    Invalid(Vec<InvalidLine>),
}

/// One malformed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number.
    pub line: usize,
    /// 0-based byte offset in the line (after leading whitespace).
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

struct InvalidLines<'a>(&'a [InvalidLine]);

impl fmt::Display for InvalidLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, bad) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "line {}, byte {}: {}", bad.line, bad.offset, bad.message)?;
        }
        Ok(())
    }
}

/// Plays the turns of a script in order, one per step; ends with
/// [`PolicyError::Exhausted`].
///
/// The format: one turn per line, as the model writes it (a bare action
/// `92 0 0 ; W ; W ; ; ; ;`, or with markers and an optional thought);
/// blank lines and lines starting with `#` are ignored.
#[derive(Debug, Clone)]
pub struct ScriptPolicy {
    name: String,
    turns: Vec<(usize, Turn)>,
    next: usize,
}

impl ScriptPolicy {
    /// Reads and checks a script file.
    ///
    /// # Errors
    /// The file is unreadable or has malformed lines (all are listed).
    pub fn load(path: &Path, vocab: &KeyVocabulary) -> Result<ScriptPolicy, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ScriptPolicy::parse(&name, &text, vocab)
    }

    /// Checks a script given as text; `name` is used in logs.
    ///
    /// # Errors
    /// Malformed lines, every one of them with its line number.
    pub fn parse(
        name: &str,
        text: &str,
        vocab: &KeyVocabulary,
    ) -> Result<ScriptPolicy, ScriptError> {
        let mut turns = Vec::new();
        let mut invalid = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_turn(line, vocab) {
                Ok(turn) => turns.push((i + 1, turn)),
                Err(err) => invalid.push(InvalidLine {
                    line: i + 1,
                    offset: err.offset(),
                    message: err.message(),
                }),
            }
        }
        if invalid.is_empty() {
            Ok(ScriptPolicy {
                name: name.to_owned(),
                turns,
                next: 0,
            })
        } else {
            Err(ScriptError::Invalid(invalid))
        }
    }

    /// Number of turns.
    #[must_use]
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// True when the script has no turn.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The turns with their line numbers.
    #[must_use]
    pub fn turns(&self) -> &[(usize, Turn)] {
        &self.turns
    }
}

impl Policy for ScriptPolicy {
    fn describe(&self) -> String {
        format!("script:{}", self.name)
    }

    fn next_turn(
        &mut self,
        _observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        let (_, turn) = self.turns.get(self.next).ok_or(PolicyError::Exhausted)?;
        self.next += 1;
        stream_turn(turn, out);
        Ok(turn.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_all_reported_with_numbers() {
        let vocab = KeyVocabulary::default();
        let text = "# warm up\n0 0 0 ; W ; W ; W ; W ; W ; W\n\n0 0 0 ; Q Q ; ; ; ; ;\n5 0 0 ; W\n";
        let err = ScriptPolicy::parse("s", text, &vocab).unwrap_err();
        let ScriptError::Invalid(lines) = &err else {
            panic!("{err}")
        };
        assert_eq!(lines.iter().map(|l| l.line).collect::<Vec<_>>(), [4, 5]);
        assert!(err.to_string().starts_with("line 4, byte 10:"), "{err}");
    }

    #[test]
    fn plays_in_order_then_ends() {
        let vocab = KeyVocabulary::default();
        let mut script =
            ScriptPolicy::parse("s", "1 0 0 ; W ; ; ; ; ;\n<|thought_start|>go<|thought_end|><|action_start|>2 0 0 ; ; ; ; ; ;<|action_end|>\n", &vocab).unwrap();
        assert_eq!(script.len(), 2);
        let frame = std::sync::Arc::new(lumine_vision::RgbImage::zeroed(2, 2));
        let obs = Observation {
            step: 0,
            frame: &frame,
            messages: &[],
            first_chunk_due: None,
        };
        let mut events = Vec::new();
        assert_eq!(
            script
                .next_turn(&obs, &mut |e| events.push(e))
                .unwrap()
                .action
                .dx,
            1
        );
        assert_eq!(events.len(), 8);
        let turn = script.next_turn(&obs, &mut |_| {}).unwrap();
        assert_eq!(turn.thought.as_deref(), Some("go"));
        assert_eq!(
            script.next_turn(&obs, &mut |_| {}),
            Err(PolicyError::Exhausted)
        );
    }
}
