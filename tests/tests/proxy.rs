//! The fault proxy against a real echo server on loopback: each mode, `drop_all`,
//! the counters, and stopping. No rcim processes: this tests the tool the other
//! tests will lean on.

use rcim_tests::eventually;
use rcim_tests::proxy::{FaultProxy, Mode};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// How long anything that should happen may take.
const LIMIT: Duration = Duration::from_secs(5);

/// An upstream that echoes every byte back on each connection, one thread per
/// connection. Its threads end with their connections or the test process.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    live: Arc<AtomicUsize>,
}

impl Echo {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo");
        let addr = listener.local_addr().expect("echo addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let (counted, open) = (Arc::clone(&accepted), Arc::clone(&live));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                open.fetch_add(1, Ordering::SeqCst);
                let open = Arc::clone(&open);
                std::thread::spawn(move || {
                    echo(stream);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            live,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// Echoes until EOF or an error, then closes.
fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads exactly `want.len()` bytes (within [`LIMIT`]) and checks them.
fn expect_bytes(stream: &mut TcpStream, want: &[u8]) {
    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let mut got = vec![0; want.len()];
    stream.read_exact(&mut got).expect("the echo");
    assert_eq!(got, want);
}

fn roundtrip(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("write");
    expect_bytes(stream, bytes);
}

/// Checks that for [`QUIET`] the stream yields neither bytes nor EOF nor an error.
fn expect_silence(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(QUIET)).expect("read timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("the connection was closed"),
        Ok(n) => panic!("{n} bytes arrived: {:?}", &buf[..n]),
        Err(e) => panic!("the connection failed: {e}"),
    }
}

/// Checks that the stream is closed: EOF or a reset, within [`LIMIT`].
fn expect_closed(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {}
        Ok(n) => panic!("{n} bytes arrived instead of EOF"),
        Err(e) => panic!("no EOF or reset: {e}"),
    }
}

#[test]
fn pass_forwards_both_ways_and_counts_connections() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    assert_eq!(
        proxy.url(),
        format!("rcim://127.0.0.1:{}", proxy.addr().port())
    );
    assert_eq!(proxy.mode(), Mode::Pass);

    let mut a = connect(&proxy);
    let mut b = connect(&proxy);
    roundtrip(&mut a, b"hello");
    roundtrip(&mut b, b"world");
    // Larger than one chunk and the queue together, so back-pressure is exercised.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
    let mut reader = a.try_clone().expect("clone");
    let writer = std::thread::spawn(move || a.write_all(&big).map(|()| big));
    let mut got = vec![0; 1_000_000];
    reader.set_read_timeout(Some(LIMIT)).expect("read timeout");
    reader.read_exact(&mut got).expect("the big echo");
    let big = writer.join().expect("writer").expect("write");
    assert!(got == big, "the big echo differs");

    assert_eq!(proxy.accepted(), 2);
    assert_eq!(proxy.live(), 2);
    drop(b);
    assert!(
        eventually(LIMIT, || proxy.live() == 1),
        "a closed client ends its connection"
    );
    assert!(eventually(LIMIT, || echo.live() == 1), "and upstream's");
}

#[test]
fn drop_all_closes_both_sides_and_new_connections_still_work() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut a = connect(&proxy);
    let mut b = connect(&proxy);
    roundtrip(&mut a, b"a");
    roundtrip(&mut b, b"b");
    assert_eq!(echo.live(), 2);

    proxy.drop_all();
    assert_eq!(proxy.live(), 0, "closed when drop_all returns");
    assert_eq!(proxy.accepted(), 2);
    expect_closed(&mut a);
    expect_closed(&mut b);
    assert!(
        eventually(LIMIT, || echo.live() == 0),
        "upstream's ends are closed too"
    );

    let mut c = connect(&proxy);
    roundtrip(&mut c, b"c");
    assert_eq!(proxy.accepted(), 3);
    assert_eq!(proxy.live(), 1);
}

#[test]
fn black_hole_holds_bytes_without_closing_and_pass_delivers_them() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut old = connect(&proxy);
    roundtrip(&mut old, b"before");

    proxy.set_mode(Mode::BlackHole);
    old.write_all(b"during")
        .expect("the write is accepted locally");
    // A connection made during the hole is accepted but does not reach upstream.
    let mut new = connect(&proxy);
    new.write_all(b"new").expect("write");
    expect_silence(&mut old);
    expect_silence(&mut new);
    assert_eq!(echo.accepted(), 1);
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(proxy.live(), 2);

    proxy.set_mode(Mode::Pass);
    expect_bytes(&mut old, b"during");
    expect_bytes(&mut new, b"new");
    roundtrip(&mut old, b"after");
    let mut fresh = connect(&proxy);
    roundtrip(&mut fresh, b"fresh");
    assert_eq!(echo.accepted(), 3);
}

#[test]
fn black_hole_passes_no_close_until_it_ends() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut client = connect(&proxy);
    roundtrip(&mut client, b"x");

    proxy.set_mode(Mode::BlackHole);
    client
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    std::thread::sleep(QUIET);
    assert_eq!(echo.live(), 1, "the FIN is held in the hole");
    proxy.set_mode(Mode::Pass);
    // The echo server closes when it reads EOF, and that comes back through.
    expect_closed(&mut client);
    assert!(eventually(LIMIT, || echo.live() == 0 && proxy.live() == 0));
}

#[test]
fn refuse_closes_the_port_and_pass_reopens_it() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut open = connect(&proxy);
    roundtrip(&mut open, b"open");

    proxy.set_mode(Mode::Refuse);
    let refused = TcpStream::connect(proxy.addr())
        .map(|_| ())
        .map_err(|e| e.kind());
    assert_eq!(refused, Err(ErrorKind::ConnectionRefused));
    assert_eq!(
        proxy.accepted(),
        1,
        "a refused connection was never accepted"
    );
    // Connections made before keep flowing.
    roundtrip(&mut open, b"still");
    assert_eq!(proxy.live(), 1);

    // The port is reopened even though a connection accepted on it is open.
    proxy.set_mode(Mode::Pass);
    let mut again = connect(&proxy);
    roundtrip(&mut again, b"again");
    assert_eq!(proxy.accepted(), 2);
    assert_eq!(proxy.live(), 2);
    assert_eq!(echo.accepted(), 2);
}

#[test]
fn delay_holds_every_chunk_in_each_direction_in_order() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut client = connect(&proxy);
    roundtrip(&mut client, b"warm");

    let delay = Duration::from_millis(150);
    proxy.set_mode(Mode::Delay(delay));
    let start = Instant::now();
    for part in [&b"one "[..], b"two ", b"three"] {
        client.write_all(part).expect("write");
        std::thread::sleep(Duration::from_millis(10));
    }
    expect_bytes(&mut client, b"one two three");
    let took = start.elapsed();
    // Out through the proxy and back again: the delay counts twice.
    assert!(took >= 2 * delay, "echo after {took:?}");

    proxy.set_mode(Mode::Pass);
    roundtrip(&mut client, b"prompt");
}

#[test]
fn an_unreachable_upstream_closes_the_client() {
    // A port nobody listens on: bind one, note it, close it.
    let upstream = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let proxy = FaultProxy::start(upstream);
    let mut client = connect(&proxy);
    expect_closed(&mut client);
    assert_eq!(proxy.accepted(), 1);
    assert!(eventually(LIMIT, || proxy.live() == 0));
}

#[test]
fn stop_closes_everything_and_the_port() {
    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut client = connect(&proxy);
    roundtrip(&mut client, b"x");
    // Stopping must not wait for a connection stuck in a black hole.
    proxy.set_mode(Mode::BlackHole);
    let mut stuck = connect(&proxy);

    let start = Instant::now();
    proxy.stop();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "stop took too long"
    );
    expect_closed(&mut client);
    expect_closed(&mut stuck);
    assert!(eventually(LIMIT, || echo.live() == 0));
    let refused = TcpStream::connect(proxy.addr())
        .map(|_| ())
        .map_err(|e| e.kind());
    assert_eq!(refused, Err(ErrorKind::ConnectionRefused));
    proxy.stop();
}

#[tokio::test]
async fn the_controls_work_inside_a_tokio_runtime() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let echo = Echo::start();
    let proxy = FaultProxy::start(echo.addr);
    let mut client = tokio::net::TcpStream::connect(proxy.addr())
        .await
        .expect("connect");
    client.write_all(b"ping").await.expect("write");
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).await.expect("echo");
    assert_eq!(&buf, b"ping");

    proxy.set_mode(Mode::BlackHole);
    client.write_all(b"lost").await.expect("write");
    let quiet = tokio::time::timeout(QUIET, client.read(&mut buf)).await;
    assert!(quiet.is_err(), "nothing arrives in a black hole: {quiet:?}");

    proxy.drop_all();
    let read = tokio::time::timeout(LIMIT, client.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "EOF or reset after drop_all: {read:?}"
    );
    // Dropped inside the runtime: must neither panic nor hang.
    drop(proxy);
}
