//! LLM token usage read from responses: the `usage` object of OpenAI and Anthropic JSON bodies, and the usage
//! events of their SSE streams, parsed as the bytes arrive (events and lines may be split across chunks).

use serde_json::Value;

use crate::config::TokenCount;

/// Tokens of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens (OpenAI `prompt_tokens`, which include cached ones; Anthropic `input_tokens` plus its cache
    /// reads and writes).
    pub input: u64,
    /// Output tokens.
    pub output: u64,
}

impl Usage {
    /// The tokens a limit counts.
    pub fn cost(&self, count: TokenCount) -> u64 {
        match count {
            TokenCount::Total => self.input.saturating_add(self.output),
            TokenCount::Input => self.input,
            TokenCount::Output => self.output,
        }
    }
}

/// The most tokens one usage field counts (2^48): the counters' arithmetic stays far from overflowing whatever an
/// upstream claims.
const MAX_TOKENS: u64 = 1 << 48;

fn number(value: &Value, name: &str) -> Option<u64> {
    value.get(name).and_then(Value::as_u64).map(|n| n.min(MAX_TOKENS))
}

/// The usage in a `usage` object of either shape.
pub fn from_usage_object(usage: &Value) -> Option<Usage> {
    if !usage.is_object() {
        return None;
    }
    if let Some(prompt) = number(usage, "prompt_tokens") {
        let output = number(usage, "completion_tokens")
            .or_else(|| number(usage, "total_tokens").map(|t| t.saturating_sub(prompt)))
            .unwrap_or(0);
        return Some(Usage { input: prompt, output });
    }
    let input = number(usage, "input_tokens");
    let output = number(usage, "output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    let cache = number(usage, "cache_read_input_tokens").unwrap_or(0)
        + number(usage, "cache_creation_input_tokens").unwrap_or(0);
    Some(Usage { input: input.unwrap_or(0).saturating_add(cache), output: output.unwrap_or(0) })
}

/// The usage of a whole JSON response (OpenAI `chat.completion` / `text_completion`, Anthropic `message`).
pub fn from_json(body: &[u8]) -> Option<Usage> {
    let value: Value = serde_json::from_slice(body).ok()?;
    from_usage_object(value.get("usage")?)
}

/// The largest SSE line kept while waiting for its end.
const MAX_LINE: usize = 1 << 20;

/// An SSE stream's usage, fed chunk by chunk.
#[derive(Debug, Default)]
pub struct SseUsage {
    /// The unfinished line.
    partial: Vec<u8>,
    /// The `data:` lines of the event being read.
    data: Vec<u8>,
    /// Input tokens seen (`message_start`, or a usage chunk).
    input: Option<u64>,
    /// Output tokens seen (cumulative in Anthropic's `message_delta`: set, not added).
    output: Option<u64>,
    /// A line was too long: it was dropped.
    pub overflowed: bool,
}

impl SseUsage {
    /// Reads one chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(end);
            rest = &tail[1..];
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole);
            }
        }
        if self.partial.len() + rest.len() > MAX_LINE {
            self.overflowed = true;
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }

    /// Ends the stream (an event not followed by a blank line still counts).
    pub fn finish(&mut self) -> Option<Usage> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
        self.dispatch();
        self.usage()
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        if self.input.is_none() && self.output.is_none() {
            return None;
        }
        Some(Usage { input: self.input.unwrap_or(0), output: self.output.unwrap_or(0) })
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.dispatch();
        } else if let Some(data) = line.strip_prefix(b"data:") {
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if !self.data.is_empty() {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(data);
        }
        // `event:`, `id:`, `retry:` and comments: the payload's `type` says what an Anthropic event is.
    }

    fn dispatch(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.is_empty() || data == b"[DONE]" || !data.windows(5).any(|w| w == b"usage") {
            return;
        }
        let Ok(event) = serde_json::from_slice::<Value>(&data) else { return };
        match event.get("type").and_then(Value::as_str) {
            // Anthropic: input (and the first output count) at the start, the cumulative output at the end.
            Some("message_start") => {
                if let Some(usage) = event.get("message").and_then(|m| m.get("usage")).and_then(from_usage_object) {
                    self.input = Some(usage.input);
                    self.output = Some(usage.output);
                }
            }
            Some("message_delta") => {
                if let Some(usage) = event.get("usage") {
                    if let Some(output) = number(usage, "output_tokens") {
                        self.output = Some(output);
                    }
                    if number(usage, "input_tokens").is_some() {
                        if let Some(all) = from_usage_object(usage) {
                            self.input = Some(all.input);
                        }
                    }
                }
            }
            // OpenAI: the usage chunk (`choices: []`) when `stream_options.include_usage` was set.
            _ => {
                if let Some(usage) = event.get("usage").and_then(from_usage_object) {
                    self.input = Some(usage.input);
                    self.output = Some(usage.output);
                }
            }
        }
    }
}

/// Adds `stream_options.include_usage: true` to a streaming chat/completions request body; `None` when the body
/// is not such a request or already asks for usage.
pub fn ask_for_stream_usage(body: &[u8]) -> Option<Vec<u8>> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let object = request.as_object_mut()?;
    if object.get("stream").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let options = object.entry("stream_options").or_insert_with(|| Value::Object(Default::default()));
    let options = options.as_object_mut()?;
    if options.get("include_usage").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    serde_json::to_vec(&request).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI_SSE: &str = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
        data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}\n\n\
        data: [DONE]\n\n";

    const ANTHROPIC_SSE: &str = "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n\
        event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\r\n\r\n\
        event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\r\n\r\n\
        event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":15}}\r\n\r\n\
        event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

    fn split_feed(text: &str, size: usize) -> Option<Usage> {
        let mut sse = SseUsage::default();
        for chunk in text.as_bytes().chunks(size) {
            sse.feed(chunk);
        }
        sse.finish()
    }

    #[test]
    fn streams_in_any_chunking_give_the_same_usage() {
        for size in [1, 2, 3, 7, 64, 10_000] {
            assert_eq!(split_feed(OPENAI_SSE, size), Some(Usage { input: 11, output: 7 }), "size {size}");
            assert_eq!(split_feed(ANTHROPIC_SSE, size), Some(Usage { input: 25, output: 15 }), "size {size}");
        }
        assert_eq!(split_feed("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", 5), None);
    }

    #[test]
    fn json_bodies_of_both_shapes() {
        let openai =
            br#"{"object":"chat.completion","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(from_json(openai), Some(Usage { input: 3, output: 4 }));
        let anthropic =
            br#"{"type":"message","usage":{"input_tokens":10,"cache_creation_input_tokens":2,"output_tokens":6}}"#;
        assert_eq!(from_json(anthropic).map(|u| u.cost(TokenCount::Total)), Some(18));
        assert_eq!(from_json(b"{\"usage\": null}"), None);
    }

    #[test]
    fn asks_a_stream_for_its_usage() {
        let body = ask_for_stream_usage(br#"{"model":"m","stream":true,"messages":[]}"#).expect("rewritten");
        let value: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value["stream_options"]["include_usage"], true);
        assert_eq!(ask_for_stream_usage(br#"{"stream":false}"#), None);
        assert_eq!(ask_for_stream_usage(br#"{"stream":true,"stream_options":{"include_usage":true}}"#), None);
    }
}
