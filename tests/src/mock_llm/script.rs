//! What a test scripts a mock provider to answer, in provider-neutral terms; each provider module renders
//! it in its own shapes.

use serde_json::Value;
use std::time::Duration;

/// The answer to one request.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// A successful answer: JSON, or a stream when the request asks for one.
    Answer(Answer),
    /// An error with the provider's status, body shape and (for 429, when given) retry header.
    Error {
        /// HTTP status (400, 401, 403, 404, 429, 500, 503, 529...).
        status: u16,
        /// The message in the provider's error body.
        message: String,
        /// Seconds for the provider's retry header (`retry-after`) on a 429 or 529.
        retry_after: Option<u64>,
    },
    /// A stream that starts with this answer's first events (start, the first text piece), then carries the
    /// provider's in-band error (`event: error`, an exception frame, ...) and ends.
    MidStreamError {
        /// The answer the stream begins.
        answer: Answer,
        /// The error message.
        message: String,
    },
    /// 200 with the provider's content type and a body that is not its JSON (a truncated object).
    Malformed,
    /// 200 with an HTML page instead of the provider's answer (what a misconfigured proxy in front sends).
    NotJson,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior::Answer(Answer::default())
    }
}

impl Behavior {
    /// An error without a retry header.
    pub fn error(status: u16, message: &str) -> Behavior {
        Behavior::Error { status, message: message.into(), retry_after: None }
    }
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The assistant text (streamed word by word).
    pub text: String,
    /// Reasoning text (Anthropic thinking, Gemini thought parts, Bedrock reasoningContent), if any.
    pub reasoning: Option<String>,
    /// Tool calls, in order (ids are used as given where the provider has ids).
    pub tool_calls: Vec<ToolCall>,
    /// Why generation stopped.
    pub finish: Finish,
    /// Token counts, in OpenAI terms; each provider splits them its own way.
    pub usage: Usage,
    /// The model reported; the requested one when `None`.
    pub model: Option<String>,
}

impl Default for Answer {
    fn default() -> Self {
        Answer::text("Hello from the mock.")
    }
}

impl Answer {
    /// A text answer that stops normally, with usage 11 prompt / 7 completion tokens.
    pub fn text(text: &str) -> Answer {
        Answer {
            text: text.into(),
            reasoning: None,
            tool_calls: Vec::new(),
            finish: Finish::Stop,
            usage: Usage { prompt: 11, cached: 0, completion: 7, reasoning: 0 },
            model: None,
        }
    }

    /// Adds a tool call and sets the finish reason to [`Finish::ToolCalls`].
    pub fn with_tool_call(mut self, id: &str, name: &str, arguments: Value) -> Answer {
        self.tool_calls.push(ToolCall { id: id.into(), name: name.into(), arguments });
        self.finish = Finish::ToolCalls;
        self
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: Usage) -> Answer {
        self.usage = usage;
        self
    }

    /// Sets the finish reason.
    pub fn with_finish(mut self, finish: Finish) -> Answer {
        self.finish = finish;
        self
    }

    /// Sets reasoning text.
    pub fn with_reasoning(mut self, reasoning: &str) -> Answer {
        self.reasoning = Some(reasoning.into());
        self
    }

    /// The model to report for a request that asked for `requested`.
    pub fn model_for(&self, requested: &str) -> String {
        self.model.clone().unwrap_or_else(|| requested.to_string())
    }

    /// The text cut into streaming pieces: words with their leading space.
    pub fn text_pieces(&self) -> Vec<String> {
        split_words(&self.text)
    }
}

/// One tool call.
#[derive(Clone, Debug)]
pub struct ToolCall {
    /// The provider's id (`call_...`, `toolu_...`, `tooluse_...`); unused by Gemini and Ollama.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments object.
    pub arguments: Value,
}

impl ToolCall {
    /// The arguments as JSON text cut into three pieces at character boundaries (for partial-JSON deltas).
    pub fn argument_pieces(&self) -> Vec<String> {
        let text = self.arguments.to_string();
        let chars: Vec<char> = text.chars().collect();
        let cuts = [0, chars.len() / 3, (2 * chars.len()) / 3, chars.len()];
        cuts.windows(2).map(|w| chars[w[0]..w[1]].iter().collect::<String>()).filter(|p| !p.is_empty()).collect()
    }
}

/// Why generation stopped, in provider-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Natural end (`stop`).
    Stop,
    /// Token limit (`length`).
    Length,
    /// Tool calls (`tool_calls`).
    ToolCalls,
    /// Refused or filtered (`content_filter`).
    ContentFilter,
}

/// Token counts in OpenAI terms: `prompt` includes `cached`, `completion` includes `reasoning`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub prompt: u64,
    /// Input tokens read from the provider's cache.
    pub cached: u64,
    /// All output tokens, reasoning included.
    pub completion: u64,
    /// Output tokens spent reasoning.
    pub reasoning: u64,
}

/// How a stream is cut into writes: piece sizes in bytes (used in turn) and a pause between writes.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// Sizes of successive writes, cycled.
    pub sizes: Vec<usize>,
    /// Pause between two writes.
    pub delay: Duration,
}

impl Default for Pacing {
    /// Odd sizes from 1 to 61 bytes, 1 ms apart: every event is split somewhere awkward.
    fn default() -> Self {
        Pacing { sizes: vec![7, 1, 23, 3, 61, 11, 2, 37, 5, 17], delay: Duration::from_millis(1) }
    }
}

impl Pacing {
    /// Cuts `bytes` into pieces of the configured sizes (ignoring character boundaries on purpose).
    pub fn cut(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < bytes.len() {
            let size = self.sizes.get(i % self.sizes.len().max(1)).copied().unwrap_or(bytes.len()).max(1);
            let end = (at + size).min(bytes.len());
            out.push(bytes[at..end].to_vec());
            at = end;
            i += 1;
        }
        out
    }
}

/// `"a b c"` as `["a", " b", " c"]`.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        if i == 0 {
            out.push(word.to_string());
        } else {
            out.push(format!(" {word}"));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_back() {
        assert_eq!(split_words("héllo wörld  x"), vec!["héllo", " wörld", " ", " x"]);
        let call = ToolCall { id: "c".into(), name: "f".into(), arguments: serde_json::json!({"city": "Zürich"}) };
        assert_eq!(call.argument_pieces().concat(), r#"{"city":"Zürich"}"#);
        let bytes: Vec<u8> = (0..200u8).collect();
        assert_eq!(Pacing::default().cut(&bytes).concat(), bytes);
    }
}
