//! AWS event stream (`application/vnd.amazon.eventstream`), the framing of Bedrock's ConverseStream: each
//! message is `total length (u32) | headers length (u32) | prelude CRC32 | headers | payload | message CRC32`,
//! big-endian, and may arrive split across body chunks. [`Decoder`] holds only the incomplete message.

/// CRC-32 (IEEE 802.3), as the framing uses.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// One decoded message: its string headers (`:message-type`, `:event-type`, `:exception-type`, ...) and
/// payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The headers whose values are strings (other types are skipped).
    pub headers: Vec<(String, String)>,
    /// The payload (JSON for Bedrock).
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Why the stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A length is impossible (or larger than the bound).
    Length(u32),
    /// The prelude checksum does not match.
    PreludeCrc,
    /// The message checksum does not match.
    MessageCrc,
    /// A header is cut or of an unknown type.
    Header,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Length(n) => write!(f, "event-stream message length {n} is invalid or over max_event_bytes"),
            FrameError::PreludeCrc => f.write_str("event-stream prelude CRC mismatch"),
            FrameError::MessageCrc => f.write_str("event-stream message CRC mismatch"),
            FrameError::Header => f.write_str("event-stream header is malformed"),
        }
    }
}

/// The incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    held: Vec<u8>,
    max: usize,
}

impl Decoder {
    /// A decoder accepting messages of at most `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder { held: Vec::new(), max }
    }

    /// Bytes held (an incomplete message).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Feeds a chunk; calls `on_message` for each message it completes.
    pub fn feed(&mut self, chunk: &[u8], mut on_message: impl FnMut(Message)) -> Result<(), FrameError> {
        self.held.extend_from_slice(chunk);
        let mut start = 0;
        loop {
            let rest = &self.held[start..];
            if rest.len() < 12 {
                break;
            }
            let total = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let headers_len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if total < 16 || total as usize > self.max || headers_len > total - 16 {
                return Err(FrameError::Length(total));
            }
            if crc32(&rest[..8]) != u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) {
                return Err(FrameError::PreludeCrc);
            }
            let total = total as usize;
            if rest.len() < total {
                break;
            }
            let message = &rest[..total];
            let crc =
                u32::from_be_bytes([message[total - 4], message[total - 3], message[total - 2], message[total - 1]]);
            if crc32(&message[..total - 4]) != crc {
                return Err(FrameError::MessageCrc);
            }
            let headers_end = 12 + headers_len as usize;
            let headers = parse_headers(&message[12..headers_end])?;
            on_message(Message { headers, payload: message[headers_end..total - 4].to_vec() });
            start += total;
        }
        self.held.drain(..start);
        Ok(())
    }
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let name_len = bytes[0] as usize;
        let name = bytes.get(1..1 + name_len).ok_or(FrameError::Header)?;
        let name = String::from_utf8_lossy(name).into_owned();
        bytes = &bytes[1 + name_len..];
        let kind = *bytes.first().ok_or(FrameError::Header)?;
        bytes = &bytes[1..];
        let fixed = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = bytes.get(..2).ok_or(FrameError::Header)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let value = bytes.get(2..2 + len).ok_or(FrameError::Header)?;
                if kind == 7 {
                    out.push((name, String::from_utf8_lossy(value).into_owned()));
                }
                bytes = &bytes[2 + len..];
                continue;
            }
            _ => return Err(FrameError::Header),
        };
        bytes = bytes.get(fixed..).ok_or(FrameError::Header)?;
    }
    Ok(out)
}

/// Encodes a message with string headers (the mock side of tests, and documentation of the format).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    for (name, value) in headers {
        head.push(name.len() as u8);
        head.extend_from_slice(name.as_bytes());
        head.push(7);
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        head.extend_from_slice(value.as_bytes());
    }
    let total = (16 + head.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_values() {
        let table: &[(&[u8], u32)] =
            &[(b"", 0), (b"123456789", 0xCBF4_3926), (b"The quick brown fox jumps over the lazy dog", 0x414F_A339)];
        for &(input, expected) in table {
            assert_eq!(crc32(input), expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    /// The empty message of AWS's event-stream test suite (`aws-c-event-stream`, "empty_message"): total length
    /// 16, no headers, prelude CRC 0x05c248eb, message CRC 0x7d98c8ff.
    #[test]
    fn decodes_the_aws_empty_message_vector() {
        let bytes = [0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff];
        assert_eq!(encode(&[], b""), bytes);
        let mut decoder = Decoder::new(1024);
        let mut out = Vec::new();
        decoder.feed(&bytes, |m| out.push(m)).unwrap();
        assert_eq!(out, vec![Message::default()]);
    }

    #[test]
    fn messages_split_at_every_byte_come_out_whole() {
        let mut stream =
            encode(&[(":message-type", "event"), (":event-type", "messageStart")], b"{\"role\":\"assistant\"}");
        stream.extend(encode(&[(":event-type", "contentBlockDelta")], b"{\"delta\":{\"text\":\"Hi\"}}"));
        for split in 0..=stream.len() {
            let mut decoder = Decoder::new(1024);
            let mut out = Vec::new();
            decoder.feed(&stream[..split], |m| out.push(m)).unwrap();
            decoder.feed(&stream[split..], |m| out.push(m)).unwrap();
            assert_eq!(out.len(), 2, "split at {split}");
            assert_eq!(out[0].header(":event-type"), Some("messageStart"));
            assert_eq!(out[0].header(":message-type"), Some("event"));
            assert_eq!(out[1].payload, b"{\"delta\":{\"text\":\"Hi\"}}");
            assert_eq!(decoder.held(), 0);
        }
    }

    #[test]
    fn corrupt_or_oversized_messages_are_refused() {
        let good = encode(&[(":event-type", "x")], b"{}");
        let mut bad_prelude = good.clone();
        bad_prelude[9] ^= 1;
        let mut bad_message = good.clone();
        let last = bad_message.len() - 6;
        bad_message[last] ^= 1;
        let table: &[(&[u8], usize, FrameError)] = &[
            (&bad_prelude, 1024, FrameError::PreludeCrc),
            (&bad_message, 1024, FrameError::MessageCrc),
            (&good, 20, FrameError::Length(good.len() as u32)),
        ];
        for (bytes, max, expected) in table {
            let mut decoder = Decoder::new(*max);
            assert_eq!(decoder.feed(bytes, |_| {}), Err(expected.clone()));
        }
    }
}
