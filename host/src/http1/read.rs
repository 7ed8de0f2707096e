//! Reading an HTTP/1.1 connection into its buffer, with a read size that grows while reads fill it.

use bytes::BytesMut;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncRead;

/// Bytes asked of each read at first; a read that fills them doubles the next, up to [`MAX_READ`].
pub const FIRST_READ: usize = 8 * 1024;
/// The largest read.
pub const MAX_READ: usize = 64 * 1024;

/// Reads what `io` has into `buf`: the byte count, 0 at the peer's close. `read_size` starts at [`FIRST_READ`].
pub fn poll_fill<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    read_size: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < *read_size / 2 {
        buf.reserve(*read_size);
    }
    let spare = buf.capacity() - buf.len();
    let n = ready!(tokio_util::io::poll_read_buf(Pin::new(io), cx, buf))?;
    if n == spare && *read_size < MAX_READ {
        *read_size *= 2;
    }
    Poll::Ready(Ok(n))
}
