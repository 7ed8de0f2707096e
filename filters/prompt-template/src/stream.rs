//! Streaming answers: the OpenAI `chat.completion.chunk` SSE stream turned, as it arrives, into a stream of the
//! answer's text. Each text delta becomes `data: {"text":"..."}`; the end becomes
//! `event: done` with `data: {"finish_reason":"..."}`; an error event becomes `event: error` with the error
//! object. Events split across chunks are kept until they are whole.

use serde_json::{json, Value};

/// The most bytes of one unfinished event kept (a longer event is dropped).
const MAX_EVENT: usize = 1 << 20;

/// One stream's translation state.
#[derive(Debug, Default)]
pub struct TextStream {
    pending: Vec<u8>,
    finish_reason: Option<String>,
    done: bool,
}

impl TextStream {
    /// Feeds upstream bytes; the bytes to send to the client now.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, skip)) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end + skip).take(end).collect();
            self.event(&String::from_utf8_lossy(&event), &mut out);
        }
        if self.pending.len() > MAX_EVENT {
            self.pending.clear();
        }
        out
    }

    /// The stream ended: the last bytes to send (the `done` event if the upstream sent no `[DONE]`).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.event(&String::from_utf8_lossy(&rest), &mut out);
        }
        self.done_event(&mut out);
        out
    }

    fn done_event(&mut self, out: &mut Vec<u8>) {
        if !self.done {
            self.done = true;
            let data = json!({"finish_reason": self.finish_reason});
            out.extend_from_slice(format!("event: done\ndata: {data}\n\n").as_bytes());
        }
    }

    fn event(&mut self, event: &str, out: &mut Vec<u8>) {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            return;
        }
        let data = data.join("\n");
        if data.trim() == "[DONE]" {
            self.done_event(out);
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&data) else { return };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error["message"].as_str().unwrap_or("the provider failed during the stream");
            let body = json!({"error": {"code": "upstream_error", "message": message}});
            out.extend_from_slice(format!("event: error\ndata: {body}\n\n").as_bytes());
            return;
        }
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(text) = choice["delta"]["content"].as_str().filter(|t| !t.is_empty()) {
            out.extend_from_slice(format!("data: {}\n\n", json!({ "text": text })).as_bytes());
        }
    }
}

/// Where the first complete event ends in `bytes`, and the length of its blank-line separator.
fn event_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\n' && bytes[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if bytes[i] == b'\r'
            && bytes[i + 1] == b'\n'
            && bytes.get(i + 2) == Some(&b'\r')
            && bytes.get(i + 3) == Some(&b'\n')
        {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::TextStream;

    fn openai_stream() -> String {
        let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
            let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            format!("data: {c}\n\n")
        };
        [
            chunk(json!({"role": "assistant", "content": ""}), json!(null)),
            chunk(json!({"content": "Hel"}), json!(null)),
            chunk(json!({"content": "lo \"you\"\n"}), json!(null)),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat()
    }

    #[test]
    fn translates_split_at_every_byte() {
        let expected = "data: {\"text\":\"Hel\"}\n\ndata: {\"text\":\"lo \\\"you\\\"\\n\"}\n\n\
                        event: done\ndata: {\"finish_reason\":\"stop\"}\n\n";
        let input = openai_stream();
        for size in [1, 2, 7, 23, input.len()] {
            let mut stream = TextStream::default();
            let mut out = Vec::new();
            for piece in input.as_bytes().chunks(size) {
                out.extend(stream.feed(piece));
            }
            out.extend(stream.finish());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "pieces of {size}");
        }
    }

    #[test]
    fn ends_without_done_and_reports_error_events() {
        let mut stream = TextStream::default();
        let mut out = stream.feed(b"data: {\"error\": {\"message\": \"overloaded\"}}\r\n\r\n");
        out.extend(stream.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "event: error\ndata: {\"error\":{\"code\":\"upstream_error\",\"message\":\"overloaded\"}}"
            ),
            "{text}"
        );
        assert!(text.ends_with("event: done\ndata: {\"finish_reason\":null}\n\n"), "{text}");
    }
}
