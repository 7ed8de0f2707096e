//! Binding listener sockets: one socket per worker on the same address, with SO_REUSEPORT, so the
//! kernel spreads connections over the workers and a connection never changes threads.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;

/// Binds `count` sockets to `address`. With port 0 the first socket picks a free port and the others
/// join it. Every socket is non-blocking and listening.
pub fn bind_reuseport(address: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = address;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(4096)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok(sockets)
}

/// Binds one plain (non-reuseport) socket, for the admin listener: a second gateway must not be able to
/// share the admin port silently.
pub fn bind_single(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}
