//! TCP connection setup with the socket options applied before connect.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::{TcpSocket, TcpStream};

use super::error::WireError;

/// Options for every broker socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    pub nodelay: bool,
    /// SO_SNDBUF. `None` keeps the kernel's autotuning, which is what long fat links want
    /// unless a fixed size is known to be better.
    pub send_buffer: Option<usize>,
    /// SO_RCVBUF, set before connect because the TCP window scale is agreed in the handshake.
    /// `None` keeps the kernel's autotuning.
    pub recv_buffer: Option<usize>,
    pub keepalive: Option<Duration>,
    /// TCP_CONGESTION, e.g. `bbr`; `None` keeps the kernel's default.
    pub congestion_control: Option<String>,
    pub connect_timeout: Duration,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            nodelay: true,
            send_buffer: None,
            recv_buffer: None,
            keepalive: Some(crate::config::DEFAULT_TCP_KEEPALIVE),
            congestion_control: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Resolves `addr` ("host:port") and connects to the first address that accepts.
pub async fn connect_tcp(addr: &str, options: &SocketOptions) -> Result<TcpStream, WireError> {
    let connect_error = |source| WireError::Connect {
        addr: addr.to_string(),
        source,
    };
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(connect_error)?
        .collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for target in resolved {
        match tokio::time::timeout(options.connect_timeout, connect_one(target, options)).await {
            Ok(Ok(stream)) => {
                log_effective_buffers(addr, &stream);
                return Ok(stream);
            }
            Ok(Err(e)) => last_error = e,
            Err(_) => {
                last_error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer to connect within {:?}", options.connect_timeout),
                )
            }
        }
    }
    Err(connect_error(last_error))
}

async fn connect_one(target: SocketAddr, options: &SocketOptions) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(options.nodelay)?;
    if let Some(size) = options.send_buffer {
        socket.set_send_buffer_size(size)?;
        grant_buffer(&socket, BufferSide::Send, size)?;
    }
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size)?;
        grant_buffer(&socket, BufferSide::Receive, size)?;
    }
    if let Some(idle) = options.keepalive {
        socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
    }
    if let Some(name) = &options.congestion_control {
        socket.set_tcp_congestion(name.as_bytes())?;
    }
    let socket = TcpSocket::from_std_stream(socket.into());
    socket.connect(target).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BufferSide {
    Send,
    Receive,
}

impl BufferSide {
    fn setting(self) -> &'static str {
        match self {
            BufferSide::Send => "send.buffer.bytes",
            BufferSide::Receive => "receive.buffer.bytes",
        }
    }

    fn ceiling(self) -> &'static str {
        match self {
            BufferSide::Send => "net.core.wmem_max",
            BufferSide::Receive => "net.core.rmem_max",
        }
    }

    fn granted(self, socket: &Socket) -> io::Result<usize> {
        match self {
            BufferSide::Send => socket.send_buffer_size(),
            BufferSide::Receive => socket.recv_buffer_size(),
        }
    }

    /// Each outcome is said once per process (every connection of a cluster asks the
    /// same), and a cut size is said even after another cluster's size was granted.
    fn announced(self, cut: bool) -> &'static AtomicBool {
        static ANNOUNCED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
        &ANNOUNCED[self as usize * 2 + usize::from(cut)]
    }
}

/// Linux grants twice the size asked (the other half is its bookkeeping), but never
/// more than twice its ceiling (net.core.rmem_max / wmem_max).
fn capped_by_the_kernel(requested: usize, granted: usize) -> bool {
    granted < requested.saturating_mul(2)
}

/// After SO_RCVBUF / SO_SNDBUF: when the kernel's ceiling cut the size, asks again with
/// SO_RCVBUFFORCE / SO_SNDBUFFORCE, which a process with CAP_NET_ADMIN may; says what
/// the kernel granted, and the fix when the size stays cut.
fn grant_buffer(socket: &Socket, side: BufferSide, requested: usize) -> io::Result<()> {
    let mut granted = side.granted(socket)?;
    let mut forced = false;
    if capped_by_the_kernel(requested, granted) {
        let option = match side {
            BufferSide::Send => libc::SO_SNDBUFFORCE,
            BufferSide::Receive => libc::SO_RCVBUFFORCE,
        };
        let size = libc::c_int::try_from(requested).unwrap_or(libc::c_int::MAX);
        // SAFETY: the descriptor is open; the option value is one c_int that outlives the call.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        forced = rc == 0;
        granted = side.granted(socket)?;
    }
    let cut = capped_by_the_kernel(requested, granted);
    if side.announced(cut).swap(true, Ordering::Relaxed) {
        return Ok(());
    }
    if cut {
        let ceiling =
            std::fs::read_to_string(format!("/proc/sys/{}", side.ceiling().replace('.', "/")))
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "?".to_string());
        tracing::warn!(
            "{}={requested} asks for more than {}={ceiling} allows, and strait may not exceed it (it lacks CAP_NET_ADMIN): the kernel granted {} bytes; raise the ceiling (sysctl -w {}={requested}) or run strait with CAP_NET_ADMIN",
            side.setting(),
            side.ceiling(),
            granted / 2,
            side.ceiling()
        );
    } else {
        tracing::info!(
            "{}={requested}: the kernel granted {} bytes (it reports {granted}, doubled for its bookkeeping){}",
            side.setting(),
            granted / 2,
            if forced {
                format!(", above {} by CAP_NET_ADMIN", side.ceiling())
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// Checks before any connection that this kernel lets strait use congestion control
/// `name`; the error says what is available and how to add it.
pub fn check_congestion_control(name: &str) -> Result<(), String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("cannot open a TCP socket to try it ({e})"))?;
    let Err(error) = socket.set_tcp_congestion(name.as_bytes()) else {
        return Ok(());
    };
    let read = |key: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{key}"))
            .map(|text| text.trim().to_string())
            .unwrap_or_else(|_| "unknown".to_string())
    };
    Err(match error.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "this kernel has no TCP congestion control {name:?} (available: {}); load its module (modprobe tcp_{name}) or choose one of those",
            read("tcp_available_congestion_control")
        ),
        Some(libc::EPERM) => {
            let allowed = read("tcp_allowed_congestion_control");
            format!(
                "{name:?} is not in net.ipv4.tcp_allowed_congestion_control ({allowed}) and strait may not choose others without CAP_NET_ADMIN; allow it: sysctl -w net.ipv4.tcp_allowed_congestion_control=\"{allowed} {name}\""
            )
        }
        _ => format!("the kernel refused it: {error}"),
    })
}

/// What the kernel knows about one connection, for sizing and diagnosing long links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStats {
    /// The shortest round trip the connection has seen (0 on kernels before 4.6): the
    /// path's, without the queueing, delayed acknowledgements and scheduling delays that
    /// the smoothed one includes.
    pub min_rtt: Duration,
    /// Smoothed round-trip time of what this side sent.
    pub rtt: Duration,
    /// The receiver's own round-trip estimate (0 until it has one), which a connection
    /// that mostly receives keeps more current.
    pub receive_rtt: Duration,
    /// The receive buffer the kernel granted (SO_RCVBUF), autotuned or fixed.
    pub receive_buffer: usize,
    pub send_buffer: usize,
    pub bytes_received: u64,
    pub retransmits: u32,
}

impl TcpStats {
    /// The path's round trip: the shortest seen, else the smoothed one, else the
    /// receiver's estimate.
    pub fn round_trip(&self) -> Duration {
        [self.min_rtt, self.rtt, self.receive_rtt]
            .into_iter()
            .find(|rtt| !rtt.is_zero())
            .unwrap_or_default()
    }
}

/// Reads TCP_INFO and the buffer sizes of a connected socket.
pub fn tcp_stats(socket: &Socket) -> io::Result<TcpStats> {
    // SAFETY: tcp_info is plain old data; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is open for the lifetime of `socket`; the pointers are valid.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpStats {
        min_rtt: Duration::from_micros(info.tcpi_min_rtt.into()),
        rtt: Duration::from_micros(info.tcpi_rtt.into()),
        receive_rtt: Duration::from_micros(info.tcpi_rcv_rtt.into()),
        receive_buffer: socket.recv_buffer_size()?,
        send_buffer: socket.send_buffer_size()?,
        bytes_received: info.tcpi_bytes_received,
        retransmits: info.tcpi_total_retrans,
    })
}

fn log_effective_buffers(addr: &str, stream: &TcpStream) {
    let sock = SockRef::from(stream);
    tracing::debug!(
        broker = addr,
        send_buffer = sock.send_buffer_size().ok(),
        recv_buffer = sock.recv_buffer_size().ok(),
        nodelay = sock.tcp_nodelay().ok(),
        "connected; socket buffer sizes granted by the kernel"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_buffer_sizes_reach_the_kernel() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let options = SocketOptions {
            recv_buffer: Some(256 * 1024),
            send_buffer: Some(128 * 1024),
            ..SocketOptions::default()
        };
        let (stream, _) = tokio::join!(connect_tcp(&addr, &options), listener.accept());
        let stream = stream.unwrap();
        let sock = SockRef::from(&stream);
        // Linux doubles the requested size for its bookkeeping; it never grants less.
        assert!(sock.recv_buffer_size().unwrap() >= 256 * 1024);
        assert!(sock.send_buffer_size().unwrap() >= 128 * 1024);
        assert!(sock.tcp_nodelay().unwrap());
    }

    #[tokio::test]
    async fn tcp_stats_count_the_bytes_received_and_report_the_granted_buffer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let options = SocketOptions {
            recv_buffer: Some(64 * 1024),
            ..SocketOptions::default()
        };
        let (stream, accepted) = tokio::join!(connect_tcp(&addr, &options), listener.accept());
        let mut stream = stream.unwrap();
        let (mut peer, _) = accepted.unwrap();
        peer.write_all(&[7u8; 10_000]).await.unwrap();
        let mut received = vec![0u8; 10_000];
        stream.read_exact(&mut received).await.unwrap();
        let probe = SockRef::from(&stream).try_clone().unwrap();
        let stats = tcp_stats(&probe).unwrap();
        assert_eq!(stats.bytes_received, 10_000);
        assert!(stats.receive_buffer >= 64 * 1024, "{stats:?}");
        assert!(stats.round_trip() > Duration::ZERO, "{stats:?}");
        assert!(stats.min_rtt <= stats.rtt, "{stats:?}");
    }

    #[test]
    fn the_round_trip_prefers_the_shortest_seen_then_the_smoothed_one() {
        let ms = Duration::from_millis;
        let mut stats = TcpStats {
            rtt: ms(12),
            receive_rtt: ms(30),
            ..TcpStats::default()
        };
        assert_eq!(stats.round_trip(), ms(12));
        stats.min_rtt = ms(1);
        assert_eq!(stats.round_trip(), ms(1));
        assert_eq!(TcpStats::default().round_trip(), Duration::ZERO);
    }

    #[test]
    fn a_buffer_is_cut_when_the_kernel_grants_less_than_twice_the_ask() {
        assert!(!capped_by_the_kernel(256 * 1024, 512 * 1024));
        // net.core.rmem_max = 212992 cuts a 300000 byte ask, though 425984 > 300000.
        assert!(capped_by_the_kernel(300_000, 2 * 212_992));
        assert!(!capped_by_the_kernel(1, 2304));
    }

    #[tokio::test]
    async fn the_congestion_control_asked_for_is_the_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // One that is not the default, so that the setting shows: reno is built into
        // every Linux kernel, and cubic is the usual default.
        let default = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap_or_default();
        let chosen = if default.trim() == "reno" {
            "cubic"
        } else {
            "reno"
        };
        check_congestion_control(chosen).unwrap();
        let options = SocketOptions {
            congestion_control: Some(chosen.to_string()),
            keepalive: Some(Duration::from_secs(17)),
            ..SocketOptions::default()
        };
        let (stream, _) = tokio::join!(connect_tcp(&addr, &options), listener.accept());
        let stream = stream.unwrap();
        let sock = SockRef::from(&stream);
        // The kernel answers with the name padded by NULs to its 16-byte field.
        let name = sock.tcp_congestion().unwrap();
        assert_eq!(name.split(|&b| b == 0).next().unwrap(), chosen.as_bytes());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(17));
    }

    #[test]
    fn an_unknown_congestion_control_is_named_with_what_is_available() {
        let error = check_congestion_control("nosuchcc").unwrap_err();
        assert!(error.contains("\"nosuchcc\""), "{error}");
        assert!(
            error.contains("available: ") && error.contains("reno"),
            "{error}"
        );
        assert!(error.contains("modprobe tcp_nosuchcc"), "{error}");
    }

    #[tokio::test]
    async fn refused_connection_names_the_address() {
        // Bind then drop to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr = format!("127.0.0.1:{port}");
        let err = connect_tcp(&addr, &SocketOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Connect { .. }));
        assert!(err.to_string().contains(&addr));
        assert!(err.is_retriable());
    }
}
