//! The frame codec shared by the local IPC and the upstream wire protocol.
//!
//! A frame is a big-endian `u32` body length followed by a postcard-encoded body.
//! Every reader has a cap: a length above it is refused before a single byte of the
//! body is buffered, so a hostile 4 GiB prefix costs nothing. A stream that ends
//! cleanly between two frames yields `Ok(None)` ("no frame"); a stream that ends
//! inside a length prefix or a body is [`FrameError::Truncated`].
//!
//! [`FrameReader`] is cancel-safe: it only appends to its buffer while waiting, so it
//! can sit in a `tokio::select!` next to timers and commands without losing bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Size of the length prefix in bytes.
pub const LEN_PREFIX: usize = 4;

/// Largest frame body accepted on the local socket (1 MiB).
pub const MAX_IPC_FRAME: u32 = 1 << 20;

/// Largest frame body accepted on the upstream connection (1 MiB).
pub const MAX_UPSTREAM_FRAME: u32 = 1 << 20;

/// Why a frame could not be read, decoded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix announced a body larger than the reader's cap.
    #[error("frame of {len} bytes exceeds the {cap}-byte limit")]
    TooLarge {
        /// Announced body length.
        len: u64,
        /// The cap it exceeded.
        cap: u32,
    },
    /// The stream ended inside a frame.
    #[error("connection closed in the middle of a frame ({got} of {want} bytes received)")]
    Truncated {
        /// Bytes of the frame (prefix included) received before the end.
        got: usize,
        /// Bytes the frame needed (4 while the prefix itself was incomplete).
        want: usize,
    },
    /// The body is not a valid message of the expected type.
    #[error("malformed frame body: {0}")]
    Decode(postcard::Error),
    /// The body decoded, but bytes were left over after the message.
    #[error("malformed frame body: {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// The message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(postcard::Error),
    /// The underlying stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Appends one complete frame (prefix and body) for `msg` to `out`.
///
/// Fails with [`FrameError::TooLarge`] when the body would exceed `cap`, so a sender
/// never emits a frame its peer is bound to refuse; `out` is left as it was.
pub fn encode_into<T: Serialize>(msg: &T, cap: u32, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    let encoded = postcard::to_extend(msg, std::mem::take(out));
    *out = match encoded {
        Ok(buf) => buf,
        Err(e) => {
            // `to_extend` consumed the buffer; the error path only happens for types
            // postcard cannot represent, which is a programming error caught by tests.
            return Err(FrameError::Encode(e));
        }
    };
    let len = out.len() - start - LEN_PREFIX;
    if len > cap as usize {
        out.truncate(start);
        return Err(FrameError::TooLarge {
            len: len as u64,
            cap,
        });
    }
    // `len <= cap <= u32::MAX`, so the cast is lossless.
    out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Encodes `msg` as one complete frame.
pub fn encode<T: Serialize>(msg: &T, cap: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, cap, &mut out)?;
    Ok(out)
}

/// Decodes one frame body (without its prefix). Trailing bytes are an error: a body
/// is exactly one message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(body).map_err(FrameError::Decode)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

/// Writes one frame for `msg` and flushes it.
pub async fn write_frame<W, T>(writer: &mut W, msg: &T, cap: u32) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let bytes = encode(msg, cap)?;
    writer.write_all(&bytes).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads frames from a byte stream, one message at a time.
///
/// Generic over the stream so tests can use `tokio::io::duplex`. Bytes beyond the
/// current frame stay buffered for the next call, so a burst of small frames costs
/// one read system call, not one per frame.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    /// Bytes read and not yet consumed start at `start`: consuming a frame moves
    /// `start`, and the buffer is compacted only before the next read, so many small
    /// frames from one read cost no copying.
    buf: Vec<u8>,
    start: usize,
    cap: u32,
    /// How much to try to read when the next frame's size is not yet known.
    chunk: usize,
}

/// The default [`FrameReader::read_chunk`]: small, for peers that send a request
/// now and then (the buffer keeps this capacity while the peer is idle).
const READ_CHUNK: usize = 8 * 1024;

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Wraps `inner`, refusing frames whose body exceeds `cap` bytes.
    pub fn new(inner: R, cap: u32) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            start: 0,
            cap,
            chunk: READ_CHUNK,
        }
    }

    /// Reads up to `bytes` per system call (8 KiB by default). A reader of a
    /// stream that carries bursts of small frames (events, pushes) takes a larger
    /// chunk: each read then brings hundreds of frames instead of tens. The buffer
    /// takes that capacity at its first read and keeps it.
    #[must_use]
    pub fn read_chunk(mut self, bytes: usize) -> Self {
        self.chunk = bytes.max(LEN_PREFIX);
        self
    }

    /// Returns the wrapped stream.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Reads the next message.
    ///
    /// `Ok(None)` means the peer closed the stream cleanly between frames. After an
    /// error the stream is out of sync and should be closed.
    ///
    /// Cancel-safe: dropping the future loses no bytes.
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        loop {
            let want = match self.frame_len()? {
                Some(body_len) if self.buffered() >= LEN_PREFIX + body_len => {
                    let body = self.start + LEN_PREFIX;
                    let msg = decode_body(&self.buf[body..body + body_len]);
                    self.start = body + body_len;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    return msg.map(Some);
                }
                Some(body_len) => LEN_PREFIX + body_len,
                None => LEN_PREFIX,
            };
            // Compact, then reserve what the current frame needs (already checked
            // against the cap), or a modest chunk while the prefix is incomplete.
            self.buf.drain(..self.start);
            self.start = 0;
            let need = want
                .saturating_sub(self.buf.len())
                .max(self.chunk.min(self.cap as usize + LEN_PREFIX));
            self.buf.reserve(need);
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    got: self.buf.len(),
                    want,
                });
            }
        }
    }

    /// Bytes read and not yet consumed.
    fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The body length of the buffered frame, once its prefix is complete.
    fn frame_len(&self) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = self.buf[self.start..].first_chunk::<LEN_PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix);
        if len > self.cap {
            return Err(FrameError::TooLarge {
                len: u64::from(len),
                cap: self.cap,
            });
        }
        Ok(Some(len as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use tokio::io::AsyncWriteExt;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        n: u32,
        text: String,
    }

    fn msg(n: u32) -> Msg {
        Msg {
            n,
            text: format!("hello {n}"),
        }
    }

    #[tokio::test]
    async fn round_trips_many_frames_from_one_buffer() {
        let mut bytes = Vec::new();
        for n in 0..100 {
            encode_into(&msg(n), 1024, &mut bytes).unwrap();
        }
        let mut reader = FrameReader::new(bytes.as_slice(), 1024);
        for n in 0..100 {
            assert_eq!(reader.read::<Msg>().await.unwrap(), Some(msg(n)));
        }
        assert!(reader.read::<Msg>().await.unwrap().is_none());
    }

    /// A reader that counts its reads (each a system call on a real socket).
    struct Counted<'a> {
        bytes: &'a [u8],
        reads: usize,
    }

    impl tokio::io::AsyncRead for Counted<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.reads += 1;
            let n = buf.remaining().min(self.bytes.len());
            buf.put_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_larger_read_chunk_takes_a_burst_in_fewer_reads() {
        // 400 frames of ~210 bytes: ~84 KiB, like a committed batch of events.
        let mut bytes = Vec::new();
        for n in 0..400 {
            let m = Msg {
                n,
                text: "x".repeat(200),
            };
            encode_into(&m, 1024, &mut bytes).unwrap();
        }
        let mut reads = Vec::new();
        for chunk in [None, Some(64 * 1024)] {
            let counted = Counted {
                bytes: &bytes,
                reads: 0,
            };
            // Reads are also bounded by the largest frame allowed: take a cap
            // like the IPC's, well above either chunk.
            let mut reader = FrameReader::new(counted, 1 << 20);
            if let Some(chunk) = chunk {
                reader = reader.read_chunk(chunk);
            }
            for n in 0..400 {
                assert_eq!(reader.read::<Msg>().await.unwrap().map(|m| m.n), Some(n));
            }
            assert!(reader.read::<Msg>().await.unwrap().is_none());
            reads.push(reader.get_ref().reads);
        }
        // From 8 KiB (the buffer grows as frames straddle reads): 7 reads here;
        // 64 KiB: 2, plus the one that sees the end.
        assert!(reads[0] >= 5, "{reads:?}");
        assert!(reads[1] <= 3, "{reads:?}");
    }

    #[tokio::test]
    async fn clean_eof_is_no_frame() {
        let mut reader = FrameReader::new(&[][..], 1024);
        assert!(reader.read::<Msg>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn eof_inside_prefix_is_truncated() {
        let mut reader = FrameReader::new(&[0u8, 0][..], 1024);
        let err = reader.read::<Msg>().await.unwrap_err();
        assert!(
            matches!(err, FrameError::Truncated { got: 2, want: 4 }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn eof_inside_body_is_truncated() {
        let bytes = encode(&msg(7), 1024).unwrap();
        for cut in 1..bytes.len() {
            let mut reader = FrameReader::new(&bytes[..cut], 1024);
            let err = reader.read::<Msg>().await.unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "cut {cut}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_prefix_is_refused_before_reading_the_body() {
        // A 4 GiB announcement followed by nothing: refused at once, no allocation,
        // no waiting for a body that never comes.
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        let mut reader = FrameReader::new(rx, 1024);
        let err = reader.read::<Msg>().await.unwrap_err();
        assert!(
            matches!(err, FrameError::TooLarge { len, cap: 1024 } if len == u64::from(u32::MAX)),
            "{err}"
        );
        assert!(
            reader.buf.capacity() < 64 * 1024,
            "buffered {}",
            reader.buf.capacity()
        );
    }

    #[tokio::test]
    async fn cap_is_inclusive() {
        let body = vec![7u8; 100];
        let frame = encode(&body, 1024).unwrap();
        let body_len = frame.len() - LEN_PREFIX;
        let cap = u32::try_from(body_len).unwrap();
        let mut ok = FrameReader::new(frame.as_slice(), cap);
        assert_eq!(ok.read::<Vec<u8>>().await.unwrap(), Some(body));
        let mut refused = FrameReader::new(frame.as_slice(), cap - 1);
        assert!(matches!(
            refused.read::<Vec<u8>>().await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn encoder_refuses_bodies_over_the_cap() {
        let mut out = vec![1, 2, 3];
        let err = encode_into(&vec![0u8; 2000], 1024, &mut out).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert_eq!(
            out,
            vec![1, 2, 3],
            "a refused frame leaves the buffer as it was"
        );
    }

    #[tokio::test]
    async fn garbage_body_is_a_decode_error() {
        // A string field announcing more bytes than the body holds.
        let mut frame = 3u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&[5, 0xff, 0xff]);
        let mut reader = FrameReader::new(frame.as_slice(), 1024);
        assert!(matches!(
            reader.read::<Msg>().await,
            Err(FrameError::Decode(_))
        ));
    }

    #[tokio::test]
    async fn trailing_bytes_are_an_error() {
        let mut body = postcard::to_stdvec(&msg(1)).unwrap();
        body.push(0);
        let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let mut reader = FrameReader::new(frame.as_slice(), 1024);
        assert!(matches!(
            reader.read::<Msg>().await,
            Err(FrameError::TrailingBytes(1))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn read_is_cancel_safe() {
        // Feed a frame one byte at a time and cancel the read between every byte.
        let frame = encode(&msg(42), 1024).unwrap();
        let (mut tx, rx) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(rx, 1024);
        for byte in &frame[..frame.len() - 1] {
            tx.write_all(&[*byte]).await.unwrap();
            let attempt =
                tokio::time::timeout(std::time::Duration::from_millis(5), reader.read::<Msg>());
            assert!(attempt.await.is_err(), "frame completed too early");
        }
        tx.write_all(&frame[frame.len() - 1..]).await.unwrap();
        assert_eq!(reader.read::<Msg>().await.unwrap(), Some(msg(42)));
    }
}
