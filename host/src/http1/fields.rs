//! What the framing fields of an HTTP/1.1 message head (`transfer-encoding`, `content-length`, `connection`)
//! say, gathered while the head is parsed (no lookups in the map afterwards).

use super::decode::Side;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Version};

/// The framing fields seen so far.
#[derive(Default)]
pub struct Framing {
    /// `transfer-encoding` is present; whether its last coding is `chunked`.
    pub chunked: Option<bool>,
    /// The agreed `content-length`, or why it is invalid (reported unless `transfer-encoding` wins).
    pub length: Option<Result<u64, String>>,
    close: bool,
    keep_alive: bool,
}

/// A field that frames a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `transfer-encoding`.
    TransferEncoding,
    /// `content-length`.
    ContentLength,
    /// `connection`.
    Connection,
}

impl Field {
    /// The framing field `name` is, if it is one.
    pub fn of(name: &HeaderName) -> Option<Field> {
        if *name == TRANSFER_ENCODING {
            Some(Field::TransferEncoding)
        } else if *name == CONTENT_LENGTH {
            Some(Field::ContentLength)
        } else if *name == CONNECTION {
            Some(Field::Connection)
        } else {
            None
        }
    }
}

impl Framing {
    /// Notes `name: value` when it is a framing field of a message on `side`; false for any other field.
    pub fn see(&mut self, name: &HeaderName, value: &HeaderValue, side: Side) -> bool {
        let Some(field) = Field::of(name) else { return false };
        self.note(field, value.as_bytes(), side);
        true
    }

    /// Notes the value of framing field `field` (a valid field value: no control bytes but tab). A value with
    /// bytes past ASCII says nothing but that it is there, as `HeaderValue::to_str` refuses it.
    pub fn note(&mut self, field: Field, value: &[u8], side: Side) {
        match field {
            Field::TransferEncoding => {
                let last = value.is_ascii().then(|| value.rsplit(|b| *b == b',').next()).flatten();
                self.chunked = Some(last.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked")));
            }
            Field::ContentLength => {
                if !matches!(self.length, Some(Err(_))) {
                    self.length = Some(agree(self.length.take(), value, side));
                }
            }
            // The usual cases, one token: no splitting.
            Field::Connection if value.eq_ignore_ascii_case(b"keep-alive") => self.keep_alive = true,
            Field::Connection if value.eq_ignore_ascii_case(b"close") => self.close = true,
            Field::Connection if value.is_ascii() => {
                for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    self.close |= token.eq_ignore_ascii_case(b"close");
                }
            }
            Field::Connection => {}
        }
    }

    /// Whether the sender allows another message on the connection (HTTP/1.0: only with `keep-alive`).
    pub fn keeps_alive(&self, version: Version) -> bool {
        if version == Version::HTTP_10 {
            self.keep_alive && !self.close
        } else {
            !self.close
        }
    }
}

/// The length a `content-length` value gives, checked against the one seen before.
fn agree(before: Option<Result<u64, String>>, value: &[u8], side: Side) -> Result<u64, String> {
    // The usual case, one plain number (a 20th digit could overflow: the general path says so).
    if !value.is_empty() && value.len() < 20 && value.iter().all(u8::is_ascii_digit) {
        let n = value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        return match before.transpose()? {
            Some(l) if l != n => Err(format!("the {} has content-length fields that disagree", side.noun())),
            _ => Ok(n),
        };
    }
    let noun = side.noun();
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| format!("the {noun}'s content-length is not a number"))?;
    let mut length = before.transpose()?;
    for part in text.split(',') {
        let part = part.trim();
        let n: u64 = part
            .parse()
            .ok()
            .filter(|_| part.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("the {noun}'s content-length {part:?} is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err(format!("the {noun} has content-length fields that disagree"));
        }
        length = Some(n);
    }
    length.ok_or_else(|| format!("the {noun}'s content-length is empty"))
}

/// Whether a `connection` value names fields to remove with it (a token other than `keep-alive` and `close`).
pub fn names_fields(value: &[u8]) -> bool {
    // The usual cases, one token: no splitting.
    if value.eq_ignore_ascii_case(b"keep-alive") || value.eq_ignore_ascii_case(b"close") {
        return false;
    }
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii).any(|token| {
        !token.is_empty() && !token.eq_ignore_ascii_case(b"close") && !token.eq_ignore_ascii_case(b"keep-alive")
    })
}

/// Whether the last `transfer-encoding` coding of `headers` is `chunked`.
pub fn ends_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")))
}

/// Appends `name: value` and its line end.
pub fn write_field(name: &str, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Where each parsed field sits in the head buffer starting at `base` (name offset and length, value offset and
/// length), so the field map can share the buffer once the head is split off; the spans of `fields` fill the
/// start of `spans`.
pub fn spans(fields: &[httparse::Header<'_>], base: usize, spans: &mut [(u32, u32, u32, u32)]) {
    for (span, field) in spans.iter_mut().zip(fields) {
        let name = field.name.as_ptr() as usize - base;
        let value = field.value.as_ptr() as usize - base;
        *span = (name as u32, field.name.len() as u32, value as u32, field.value.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_values_that_name_fields() {
        let cases = [
            ("keep-alive", false),
            ("Close", false),
            ("keep-alive, close", false),
            (" Keep-Alive ,, ", false),
            ("", false),
            ("upgrade", true),
            ("keep-alive, x-hop", true),
            ("close,te", true),
        ];
        for (value, names) in cases {
            assert_eq!(names_fields(value.as_bytes()), names, "{value:?}");
        }
    }

    #[test]
    fn content_lengths_agree_or_say_why_not() {
        // (value, the length seen before, the length or the error)
        let cases: [(&str, Option<u64>, Result<u64, &str>); 9] = [
            ("5", None, Ok(5)),
            ("05", Some(5), Ok(5)),
            ("5, 5", None, Ok(5)),
            ("9999999999999999999", None, Ok(9_999_999_999_999_999_999)),
            ("6", Some(5), Err("the response has content-length fields that disagree")),
            ("5, 6", None, Err("the response has content-length fields that disagree")),
            ("+2", None, Err("the response's content-length \"+2\" is not a number")),
            (
                "18446744073709551616",
                None,
                Err("the response's content-length \"18446744073709551616\" is not a number"),
            ),
            ("", None, Err("the response's content-length \"\" is not a number")),
        ];
        for (value, before, want) in cases {
            let got = agree(before.map(Ok), value.as_bytes(), Side::Response);
            assert_eq!(got, want.map_err(str::to_string), "{value:?} after {before:?}");
        }
    }
}
