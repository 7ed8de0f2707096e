//! Server-sent events: whether a stream reached its protocol's terminal event, so that only whole answers are
//! stored.
//!
//! | protocol | terminal event |
//! | --- | --- |
//! | OpenAI chat/completions (and compatible: Mistral, Azure, Ollama's `/v1`) | `data: [DONE]` |
//! | Anthropic Messages | `event: message_stop` (or a data object of type `message_stop`) |
//! | OpenAI Responses | `event: response.completed` (or type `response.completed`) |
//! | Gemini `streamGenerateContent?alt=sse` | a chunk with a `finishReason` |

/// Whether `body`, a whole SSE stream, holds a terminal event.
pub fn complete(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.lines().map(|l| l.trim_end_matches('\r')).any(|line| {
        if let Some(value) = field(line, "data") {
            value == "[DONE]"
                || (value.starts_with('{')
                    && (has_type(value, "message_stop")
                        || has_type(value, "response.completed")
                        || value.contains("\"finishReason\"")))
        } else if let Some(value) = field(line, "event") {
            value == "message_stop" || value == "response.completed"
        } else {
            false
        }
    })
}

/// The value of an SSE field line `name: value` (one optional space after the colon).
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest).trim_end())
}

fn has_type(json: &str, kind: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json).is_ok_and(|v| v.get("type").and_then(|t| t.as_str()) == Some(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_events_by_protocol() {
        let table: &[(&str, bool)] = &[
            ("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", true),
            ("data:[DONE]\r\n\r\n", true),
            ("data: {\"choices\":[]}\n\n", false),
            ("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", true),
            ("data: {\"type\":\"message_stop\"}\n\n", true),
            ("event: content_block_delta\ndata: {\"type\":\"content_block_delta\"}\n\n", false),
            ("event: response.completed\ndata: {}\n\n", true),
            ("data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n", true),
            ("data: {\"text\":\"[DONE]\"}\n\n", false),
            ("", false),
        ];
        for (stream, want) in table {
            assert_eq!(complete(stream.as_bytes()), *want, "{stream:?}");
        }
    }
}
