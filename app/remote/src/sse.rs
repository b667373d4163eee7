//! Server-sent events of an OpenAI-compatible streamed chat completion.

/// What one line of the event stream means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseLine {
    /// A blank line, a comment, another field, or a chunk without text.
    Ignore,
    /// `data: [DONE]`: the end of the stream.
    Done,
    /// Text of `choices[0].delta.content`.
    Content(String),
}

/// Parses one line (without its line ending).
///
/// # Errors
/// A `data:` line that is not valid JSON, or an error object from the
/// server, with a message naming the problem.
pub fn parse_sse_line(line: &str) -> Result<SseLine, String> {
    let Some(data) = line.strip_prefix("data:") else {
        return Ok(SseLine::Ignore);
    };
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(SseLine::Done);
    }
    if data.is_empty() {
        return Ok(SseLine::Ignore);
    }
    let value: serde_json::Value = serde_json::from_str(data).map_err(|e| {
        format!(
            "malformed JSON in the event stream ({e}): {}",
            excerpt(data)
        )
    })?;
    if let Some(error) = value.get("error") {
        return Err(format!(
            "the server reported an error: {}",
            excerpt(&error.to_string())
        ));
    }
    let content = value
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("delta"))
        .and_then(|d| d.get("content"))
        .and_then(serde_json::Value::as_str);
    Ok(content.map_or(SseLine::Ignore, |c| SseLine::Content(c.to_owned())))
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(parse_sse_line(""), Ok(SseLine::Ignore));
        assert_eq!(parse_sse_line(": keep-alive"), Ok(SseLine::Ignore));
        assert_eq!(parse_sse_line("data: [DONE]"), Ok(SseLine::Done));
        assert_eq!(
            parse_sse_line(r#"data: {"choices":[{"delta":{"content":" W ;"}}]}"#),
            Ok(SseLine::Content(" W ;".into()))
        );
        assert_eq!(
            parse_sse_line(r#"data:{"choices":[{"delta":{"role":"assistant"}}]}"#),
            Ok(SseLine::Ignore)
        );
        let err = parse_sse_line("data: {oops").unwrap_err();
        assert!(err.contains("malformed JSON"), "{err}");
        let err = parse_sse_line(r#"data: {"error":{"message":"boom"}}"#).unwrap_err();
        assert!(err.contains("boom"), "{err}");
    }
}
