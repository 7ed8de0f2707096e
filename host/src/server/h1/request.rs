//! A request head read off a client connection: parsed with httparse into `http` types whose values share the
//! read buffer, with what its framing fields say about the body and the connection.
//!
//! Framing follows RFC 9112 section 6.3 for requests: `transfer-encoding` must end in `chunked` (and wins over
//! a `content-length`, after which the connection is closed: section 6.1); else one agreed `content-length`;
//! else no body.

use crate::http1::decode::{Chunk, Decoder, Side};
use crate::http1::fields::Framing;
use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, EXPECT, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};

/// Bound on a request head (request line and fields).
pub const MAX_HEAD: usize = 64 * 1024;
/// Bound on the fields of a request head.
pub const MAX_FIELDS: usize = 100;

/// Fields the gateway adds to a request it proxies (x-forwarded-for and -proto, x-request-id, traceparent). More
/// room costs more than it saves: past 1 KiB (a dozen entries) the map's storage leaves the allocator's fast
/// path for small sizes.
const FIELDS_ADDED: usize = 4;

/// A parsed request head.
pub struct Head {
    /// Method, target, version and fields; the body is given by the caller.
    pub request: Request<()>,
    /// How the body is framed (`Length(0)`: no body).
    pub decoder: Decoder,
    /// The client allows another request on the connection after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expects_continue: bool,
    /// The client takes trailers (`te: trailers`).
    pub takes_trailers: bool,
}

/// Why a head is refused: the status to answer with and what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    /// 400, 431 or 505.
    pub status: StatusCode,
    /// What is wrong, for the client.
    pub detail: String,
}

fn bad(detail: impl Into<String>) -> Refused {
    Refused { status: StatusCode::BAD_REQUEST, detail: detail.into() }
}

/// Parses the request head at the start of `buf`: `None` while it is not whole. A complete head is removed
/// from `buf`.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Refused> {
    // Left uninitialised: httparse writes the fields it finds (a 3 KiB array cleared per request otherwise).
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut request = httparse::Request::new(&mut []);
    let too_large = || Refused {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        detail: format!("the request head is larger than {} KiB", MAX_HEAD / 1024),
    };
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut request, buf, &mut fields)
    {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(_) if buf.len() > MAX_HEAD => return Err(too_large()),
        Ok(_) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refused {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                detail: format!("the request head has more than {MAX_FIELDS} fields"),
            })
        }
        Err(httparse::Error::Version) => {
            return Err(Refused {
                status: StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                detail: "the request's HTTP version is not supported: send HTTP/1.1 (or HTTP/2)".into(),
            })
        }
        Err(e) => return Err(bad(format!("the request head is malformed: {e}"))),
    };
    let method = request.method.unwrap_or("");
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|_| bad(format!("the method {method:?} is not valid")))?;
    let version = if request.version == Some(0) { Version::HTTP_10 } else { Version::HTTP_11 };
    // Where the target and each field sit in the head, so they can share the buffer once it is split off.
    let base = buf.as_ptr() as usize;
    let path = request.path.unwrap_or("");
    let target = (path.as_ptr() as usize - base, path.len());
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_FIELDS];
    let count = request.headers.len();
    crate::http1::fields::spans(request.headers, base, &mut spans);
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.0 + target.1)).map_err(|e| {
        bad(format!(
            "the request target {:?} is not valid: {e}",
            String::from_utf8_lossy(&head[target.0..][..target.1])
        ))
    })?;
    // Room for what the gateway adds, so the map does not grow (and rehash) on the way upstream.
    let mut headers = HeaderMap::with_capacity(count + FIELDS_ADDED);
    let mut framing = Fields::default();
    for &(name, name_len, value, value_len) in &spans[..count] {
        let (name, value) = (name as usize, value as usize);
        let name = HeaderName::from_bytes(&head[name..name + name_len as usize])
            .map_err(|_| bad("the request head has a field with an invalid name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len as usize))
            .map_err(|_| bad(format!("the request field {name} has an invalid value")))?;
        framing.see(&name, &value);
        headers.append(name, value);
    }
    let decoder = framing.decoder(version)?;
    let mut keep_alive = framing.framing.keeps_alive(version);
    if framing.framing.chunked.is_some() && framing.framing.length.is_some() {
        // Both framings: the body is read as chunked, the length is not passed on, and the connection closes
        // after the answer (RFC 9112 section 6.1), so no one downstream reads the body by the other framing.
        headers.remove(CONTENT_LENGTH);
        keep_alive = false;
    }
    let expects_continue = framing.expects_continue && version == Version::HTTP_11 && !decoder.is_done();
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let takes_trailers = framing.takes_trailers;
    Ok(Some(Head { request, decoder, keep_alive, expects_continue, takes_trailers }))
}

/// What the framing fields say, and the two more a request has, gathered as the head is read.
#[derive(Default)]
struct Fields {
    framing: Framing,
    expects_continue: bool,
    takes_trailers: bool,
}

impl Fields {
    fn see(&mut self, name: &HeaderName, value: &HeaderValue) {
        if self.framing.see(name, value, Side::Request) {
            return;
        }
        if *name == TE {
            let text = value.to_str().unwrap_or("");
            self.takes_trailers |= text.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers"));
        } else if *name == EXPECT {
            self.expects_continue = value.as_bytes().eq_ignore_ascii_case(b"100-continue");
        }
    }

    fn decoder(&self, version: Version) -> Result<Decoder, Refused> {
        match (self.framing.chunked, &self.framing.length) {
            (Some(_), _) if version == Version::HTTP_10 => {
                Err(bad("the HTTP/1.0 request has a transfer-encoding, which HTTP/1.0 does not have"))
            }
            (Some(true), _) => Ok(Decoder::Chunked(Chunk::Size)),
            (Some(false), _) => Err(bad("the request's transfer-encoding does not end with chunked")),
            (None, Some(Ok(n))) => Ok(Decoder::Length(*n)),
            (None, Some(Err(e))) => Err(bad(e.clone())),
            (None, None) => Ok(Decoder::Length(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (method, target, version, framing, keep-alive, expects continue, bytes left), or (status, detail).
    type Outcome = Result<(String, String, Version, Decoder, bool, bool, String), (u16, String)>;

    fn parse(text: &str) -> Outcome {
        let mut buf = BytesMut::from(text);
        match parse_head(&mut buf) {
            Ok(Some(h)) => Ok((
                h.request.method().to_string(),
                h.request.uri().to_string(),
                h.request.version(),
                h.decoder,
                h.keep_alive,
                h.expects_continue,
                String::from_utf8_lossy(&buf).into(),
            )),
            Ok(None) => Err((0, "partial".into())),
            Err(r) => Err((r.status.as_u16(), r.detail)),
        }
    }

    #[test]
    fn heads_give_target_framing_and_reuse() {
        use Version as V;
        let chunked = Decoder::Chunked(Chunk::Size);
        // (what, bytes, method, target, version, framing, keep-alive, expects continue, bytes left)
        type Case = (
            &'static str,
            &'static str,
            Result<(&'static str, V, Decoder, bool, bool, &'static str), (u16, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            (
                "plain GET",
                "GET /a?b=1 HTTP/1.1\r\nhost: x\r\n\r\n",
                Ok(("/a?b=1", V::HTTP_11, Decoder::Length(0), true, false, "")),
            ),
            (
                "pipelined",
                "GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
                Ok(("/", V::HTTP_11, Decoder::Length(0), true, false, "GET /2 HTTP/1.1\r\n\r\n")),
            ),
            (
                "length",
                "POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc",
                Ok(("/", V::HTTP_11, Decoder::Length(3), true, false, "abc")),
            ),
            (
                "same length twice",
                "POST / HTTP/1.1\r\ncontent-length: 3, 3\r\n\r\n",
                Ok(("/", V::HTTP_11, Decoder::Length(3), true, false, "")),
            ),
            (
                "chunked",
                "POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                Ok(("/", V::HTTP_11, chunked, true, false, "")),
            ),
            (
                "chunked and length: closes",
                "POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
                Ok(("/", V::HTTP_11, chunked, false, false, "")),
            ),
            (
                "connection: close",
                "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n",
                Ok(("/", V::HTTP_11, Decoder::Length(0), false, false, "")),
            ),
            ("HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", Ok(("/", V::HTTP_10, Decoder::Length(0), false, false, ""))),
            (
                "HTTP/1.0 keep-alive",
                "GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
                Ok(("/", V::HTTP_10, Decoder::Length(0), true, false, "")),
            ),
            (
                "expect 100-continue",
                "PUT / HTTP/1.1\r\nexpect: 100-Continue\r\ncontent-length: 1\r\n\r\n",
                Ok(("/", V::HTTP_11, Decoder::Length(1), true, true, "")),
            ),
            (
                "expect without a body",
                "PUT / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n",
                Ok(("/", V::HTTP_11, Decoder::Length(0), true, false, "")),
            ),
            (
                "absolute form",
                "GET http://example.com/p HTTP/1.1\r\n\r\n",
                Ok(("http://example.com/p", V::HTTP_11, Decoder::Length(0), true, false, "")),
            ),
            ("partial", "GET / HTTP/1.1\r\nhost: x\r\n", Err((0, "partial"))),
            (
                "lengths disagree",
                "POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                Err((400, "the request has content-length fields that disagree")),
            ),
            (
                "length not a number",
                "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
                Err((400, "the request's content-length \"-1\" is not a number")),
            ),
            (
                "coding not chunked",
                "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
                Err((400, "the request's transfer-encoding does not end with chunked")),
            ),
            (
                "HTTP/1.0 chunked",
                "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
                Err((400, "the HTTP/1.0 request has a transfer-encoding, which HTTP/1.0 does not have")),
            ),
            (
                "garbage",
                "GET / HTTP/1.1\r\nbad field\r\n\r\n",
                Err((400, "the request head is malformed: invalid header name")),
            ),
            (
                "version",
                "GET / HTTP/2.0\r\n\r\n",
                Err((505, "the request's HTTP version is not supported: send HTTP/1.1 (or HTTP/2)")),
            ),
        ];
        for (what, text, want) in cases {
            let want: Outcome = want
                .map(|(t, v, d, k, c, rest)| {
                    (text.split(' ').next().unwrap().to_string(), t.to_string(), v, d, k, c, rest.to_string())
                })
                .map_err(|(s, d)| (s, d.to_string()));
            assert_eq!(parse(text), want, "{what}");
        }
    }

    #[test]
    fn values_share_the_head_and_both_framings_drop_the_length() {
        let mut buf = BytesMut::from(
            "POST /x HTTP/1.1\r\nX-A: 1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nx-a: 2\r\n\r\n",
        );
        let head = parse_head(&mut buf).unwrap().unwrap();
        let a: Vec<_> = head.request.headers().get_all("x-a").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(a, ["1", "2"]);
        assert!(!head.request.headers().contains_key(CONTENT_LENGTH), "the length is not passed on beside chunked");
    }

    #[test]
    fn heads_beyond_the_bounds_are_refused() {
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "a: b\r\n".repeat(MAX_FIELDS + 1));
        assert_eq!(parse(&many), Err((431, "the request head has more than 100 fields".into())));
        let long = format!("GET / HTTP/1.1\r\nx: {}", "v".repeat(MAX_HEAD));
        assert_eq!(parse(&long), Err((431, "the request head is larger than 64 KiB".into())));
        let whole = format!("{long}\r\n\r\n");
        assert_eq!(parse(&whole), Err((431, "the request head is larger than 64 KiB".into())));
    }
}
