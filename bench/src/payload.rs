//! What the benchmarks send: 200-byte payloads that carry a sequence number and
//! a send timestamp.
//!
//! Every process of a run is on one machine, so the timestamp is the wall clock
//! (`CLOCK_REALTIME` through [`SystemTime`]) in nanoseconds: it is comparable
//! across processes without a shared memory page, and a run lasts seconds, so an
//! NTP slew cannot move it by more than a few microseconds. The rcimd payload is a
//! message *content* (`{"content":"SEQ:TS:xxx…"}`, 200 bytes, as RC's text message
//! carries it); the raw and MQTT payloads are 200 binary bytes with the sequence
//! number and the timestamp little-endian at the front, framed by a 4-byte
//! little-endian length on the raw socket.

use std::time::{SystemTime, UNIX_EPOCH};

/// Payload size in bytes, for every system measured.
pub const PAYLOAD: usize = 200;

/// A raw frame: 4-byte length prefix plus the payload.
pub const RAW_FRAME: usize = 4 + PAYLOAD;

/// Nanoseconds since the Unix epoch, now (`CLOCK_REALTIME`).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The message content for `seq` sent at `ts_ns`: exactly [`PAYLOAD`] bytes.
pub fn content(seq: u64, ts_ns: u64) -> String {
    let mut text = format!("{{\"content\":\"{seq}:{ts_ns}:");
    let fill = PAYLOAD.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n('x', fill));
    text.push_str("\"}");
    text
}

/// Reads `(seq, ts_ns)` back from a [`content`] string. A byte scan of the two
/// numbers: it runs for every delivery in the subscriber, whose CPU is part of
/// what the fan-out measures, so it should cost next to nothing (a `str` split
/// and two `parse` calls were a seventh of the subscriber's instructions).
pub fn parse_content(content: &str) -> Option<(u64, u64)> {
    let rest = content.strip_prefix("{\"content\":\"")?.as_bytes();
    let (seq, rest) = leading_number(rest)?;
    let (ts, rest) = leading_number(rest.strip_prefix(b":")?)?;
    rest.starts_with(b":").then_some((seq, ts))
}

/// A decimal number at the start of `bytes` (at least one digit, no overflow),
/// and what follows it.
fn leading_number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |v, &b| v * 10 + u64::from(b - b'0'));
    Some((value, &bytes[digits..]))
}

/// Writes a binary payload for `seq` sent at `ts_ns` into `out` (at least
/// [`PAYLOAD`] bytes long).
pub fn write_binary(out: &mut [u8], seq: u64, ts_ns: u64) {
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&ts_ns.to_le_bytes());
}

/// Reads `(seq, ts_ns)` from a binary payload.
pub fn read_binary(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
    let ts = u64::from_le_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((seq, ts))
}

/// A complete raw frame for `seq` sent at `ts_ns`.
pub fn raw_frame(seq: u64, ts_ns: u64) -> [u8; RAW_FRAME] {
    let mut frame = [0u8; RAW_FRAME];
    frame[..4].copy_from_slice(&(PAYLOAD as u32).to_le_bytes());
    write_binary(&mut frame[4..], seq, ts_ns);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let c = content(42, 1_700_000_000_123_456_789);
        assert_eq!(c.len(), PAYLOAD);
        assert_eq!(parse_content(&c), Some((42, 1_700_000_000_123_456_789)));
        assert_eq!(parse_content("{\"content\":\"hello\"}"), None);
        assert_eq!(parse_content("{\"content\":\"1:2\"}"), None);
        assert_eq!(parse_content("{\"content\":\":2:x\"}"), None);
        assert_eq!(
            parse_content("{\"content\":\"99999999999999999999:2:x\"}"),
            None
        );
        assert_eq!(
            parse_content("{\"content\":\"0:18446744073709551615:\"}"),
            None
        );
        let f = raw_frame(7, 9);
        assert_eq!(read_binary(&f[4..]), Some((7, 9)));
    }
}
