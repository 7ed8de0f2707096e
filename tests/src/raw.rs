//! An upstream that answers with scripted bytes, for the HTTP/1.1 client's framing tests: it reads each
//! request whole (content-length or chunked body), keeps its raw bytes, and writes the next scripted answer
//! in pieces with a pause between them; an answer may close the connection after it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Written one after the other, 20 ms apart.
    pub pieces: Vec<Vec<u8>>,
    /// Close the connection after the answer.
    pub close: bool,
}

impl Answer {
    /// An answer written at once, the connection kept open.
    pub fn whole(bytes: &str) -> Answer {
        Answer { pieces: vec![bytes.as_bytes().to_vec()], close: false }
    }

    /// An answer written in these pieces.
    pub fn pieces(pieces: &[&str], close: bool) -> Answer {
        Answer { pieces: pieces.iter().map(|p| p.as_bytes().to_vec()).collect(), close }
    }
}

#[derive(Default)]
struct Seen {
    requests: Vec<Vec<u8>>,
    connections: usize,
}

/// A running scripted upstream; stops when dropped.
pub struct Raw {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Raw {
    /// Starts one on 127.0.0.1: the n-th request gets `answers[n]` (the last one again when they run out).
    pub async fn start(answers: Vec<Answer>) -> Raw {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind raw upstream");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let answers = Arc::new(answers);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, shared.clone(), answers.clone()));
            }
        });
        Raw { addr, seen, task }
    }

    /// `host:port`, for a cluster's endpoints.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// The requests read so far, as text.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().requests.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }
}

async fn serve(mut stream: tokio::net::TcpStream, seen: Arc<Mutex<Seen>>, answers: Arc<Vec<Answer>>) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else { return };
        let answer = {
            let mut seen = seen.lock().unwrap();
            seen.requests.push(request);
            answers[(seen.requests.len() - 1).min(answers.len() - 1)].clone()
        };
        for (i, piece) in answer.pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if stream.write_all(piece).await.is_err() {
                return;
            }
        }
        if answer.close {
            return;
        }
    }
}

/// One whole request (head and body) from the stream, its bytes removed from `buf`.
async fn read_request(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(len) = request_len(buf) {
            return Some(buf.drain(..len).collect());
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The length of the whole request at the start of `buf`, when it is all there.
fn request_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let field = |name: &str| {
        head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_string()))
    };
    if field("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        // Chunks until the last one and the (empty) trailer section.
        let mut at = head_end;
        loop {
            let line_end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size_text = String::from_utf8_lossy(&buf[at..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // Trailer fields, each a line, then the empty line.
                loop {
                    let line = buf[at..].windows(2).position(|w| w == b"\r\n")?;
                    at += line + 2;
                    if line == 0 {
                        return Some(at);
                    }
                }
            }
            at += size + 2;
            if at > buf.len() {
                return None;
            }
        }
    }
    let length: usize = field("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    (buf.len() >= head_end + length).then_some(head_end + length)
}
