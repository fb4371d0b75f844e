//! Helpers shared by rcim's fuzz targets: drive the async frame reader over a byte
//! slice without a runtime, and check that whatever decodes also round-trips.
//!
//! The targets feed arbitrary bytes to the decoders that face the outside: the
//! local IPC frames (`ipc_frame`), the upstream frames in both directions
//! (`upstream_frame`), the handshake messages and token claims (`handshake`) and
//! the reference server's signed form requests (`server_api`). A decoder may refuse
//! any input, but it must never panic, hang, or allocate beyond its cap.

use rcim_proto::frame::{FrameError, FrameReader, decode_body, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Runs a future that never waits for anything outside (a reader over memory).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A reader over memory that hands out at most `step` bytes per read, so the frame
/// reader's buffering across partial reads is exercised too.
pub struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl<'a> Trickle<'a> {
    /// Reads `data` in pieces of at most `step` (at least 1) bytes.
    pub fn new(data: &'a [u8], step: usize) -> Self {
        Self {
            data,
            step: step.max(1),
        }
    }
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.step.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// Every message a decoder accepted must encode again and decode to itself.
pub fn round_trips<T>(msg: &T, cap: u32)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    // A decoded body is at most `cap` bytes, and postcard's encoding is never longer
    // than what it decoded from, so this cannot fail for size.
    let frame = encode(msg, cap).expect("a decoded message encodes again");
    let again: T = decode_body(&frame[4..]).expect("an encoded message decodes");
    assert_eq!(&again, msg, "the message changed in a round trip");
}

/// Reads every frame of `data` as `T`, whole and trickled, until the end or the
/// first error, checking the round trip of each message. Returns how many decoded.
pub fn read_all<T>(data: &[u8], cap: u32) -> usize
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let step = data.first().map_or(1, |b| usize::from(b % 13) + 1);
    let mut whole = FrameReader::new(data, cap);
    let mut trickled = FrameReader::new(Trickle::new(data, step), cap);
    let mut count = 0;
    loop {
        let a: Result<Option<T>, FrameError> = block_on(whole.read());
        let b: Result<Option<T>, FrameError> = block_on(trickled.read());
        // The read size must not change what is decoded.
        match (&a, &b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "whole and trickled reads disagree"),
            (Err(_), Err(_)) => {}
            _ => panic!("whole and trickled reads disagree: {a:?} vs {b:?}"),
        }
        match a {
            Ok(Some(msg)) => {
                round_trips(&msg, cap);
                count += 1;
            }
            Ok(None) | Err(_) => return count,
        }
    }
}

/// Decodes `body` as one `T` (no prefix) and checks the round trip.
pub fn decode_one<T>(body: &[u8], cap: u32) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let msg: T = decode_body(body).ok()?;
    round_trips(&msg, cap);
    Some(msg)
}
