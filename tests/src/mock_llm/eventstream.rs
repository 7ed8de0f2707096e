//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) Bedrock streams in: per message a
//! prelude (total length, headers length, both u32 big-endian), the prelude's CRC-32, the headers
//! (name length u8, name, type 7 = string, value length u16, value), the payload, and the message's CRC-32.

use serde_json::Value;

use super::crypto::crc32;

/// One message with string headers.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    for (name, value) in headers {
        head.push(name.len() as u8);
        head.extend_from_slice(name.as_bytes());
        head.push(7);
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        head.extend_from_slice(value.as_bytes());
    }
    let total = 12 + head.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` message of type `event_type` with a JSON payload.
pub fn event(event_type: &str, payload: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(payload).expect("json");
    encode(&[(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")], &body)
}

/// An `exception` message (`throttlingException`, `modelStreamErrorException`, ...) with `{"message"}`.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    let body = serde_json::to_vec(&serde_json::json!({"message": message})).expect("json");
    encode(
        &[(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")],
        &body,
    )
}

/// A decoded message: its string headers and payload.
pub type Message = (Vec<(String, String)>, Vec<u8>);

/// Decodes whole messages, checking both CRCs (for the kit's own tests and for assertions).
pub fn decode(mut bytes: &[u8]) -> Result<Vec<Message>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let word = |b: &[u8], at: usize| -> Result<usize, String> {
            let s = b.get(at..at + 4).ok_or("short frame")?;
            Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
        };
        let total = word(bytes, 0)?;
        let head_len = word(bytes, 4)?;
        if word(bytes, 8)? as u32 != crc32(&bytes[..8]) {
            return Err("bad prelude crc".into());
        }
        let frame = bytes.get(..total).ok_or("short frame")?;
        if word(frame, total - 4)? as u32 != crc32(&frame[..total - 4]) {
            return Err("bad message crc".into());
        }
        let mut headers = Vec::new();
        let mut h = &frame[12..12 + head_len];
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8_lossy(&h[1..1 + n]).into_owned();
            if h[1 + n] != 7 {
                return Err("only string headers are supported".into());
            }
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            headers.push((name, String::from_utf8_lossy(&h[4 + n..4 + n + len]).into_owned()));
            h = &h[4 + n + len..];
        }
        out.push((headers, frame[12 + head_len..total - 4].to_vec()));
        bytes = &bytes[total..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut bytes = event("messageStart", &serde_json::json!({"role": "assistant"}));
        bytes.extend(exception("throttlingException", "slow down"));
        let messages = decode(&bytes).expect("decodes");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].0[0], (":event-type".to_string(), "messageStart".to_string()));
        assert_eq!(messages[0].1, br#"{"role":"assistant"}"#);
        assert_eq!(messages[1].0[2].1, "exception");
        let mut broken = bytes.clone();
        broken[20] ^= 1;
        assert!(decode(&broken).is_err());
    }
}
