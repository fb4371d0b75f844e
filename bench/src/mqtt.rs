//! Just enough MQTT 3.1.1 to measure Mosquitto: CONNECT, SUBSCRIBE, PUBLISH at
//! QoS 0 and DISCONNECT, over a blocking Unix socket.
//!
//! Hand-written rather than a client crate so both sides of the comparison do the
//! same work per message as the raw baseline: one `write` per PUBLISH, a 64 KiB
//! buffered reader on the subscriber side.

use anyhow::{Context as _, bail};
use std::io::{BufRead as _, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The topic every benchmark message goes to.
pub const TOPIC: &str = "bench/t";

fn remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// A PUBLISH at QoS 0 of `payload` to [`TOPIC`].
pub fn publish(payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + TOPIC.len() + 2);
    string(TOPIC, &mut body);
    body.extend_from_slice(payload);
    packet(0x30, &body)
}

/// The DISCONNECT packet.
pub const DISCONNECT: [u8; 2] = [0xE0, 0x00];

/// A connected MQTT client.
pub struct Mqtt {
    /// The write side.
    pub stream: UnixStream,
    /// The buffered read side.
    pub reader: BufReader<UnixStream>,
}

impl Mqtt {
    /// Connects to the broker's Unix socket as `client_id` (clean session, no
    /// keep-alive) and waits for the CONNACK.
    pub fn connect(socket: &Path, client_id: &str) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(socket)
            .with_context(|| format!("cannot reach mosquitto at {}", socket.display()))?;
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        let mut mqtt = Self { stream, reader };
        let mut body = Vec::new();
        string("MQTT", &mut body);
        body.extend_from_slice(&[4, 0x02, 0, 0]);
        string(client_id, &mut body);
        mqtt.stream.write_all(&packet(0x10, &body))?;
        let (kind, body) = mqtt
            .read_packet()?
            .context("mosquitto closed before CONNACK")?;
        if kind >> 4 != 2 || body.get(1) != Some(&0) {
            bail!("mosquitto refused the connection: {kind:#x} {body:?}");
        }
        Ok(mqtt)
    }

    /// Subscribes to [`TOPIC`] at QoS 0 and waits for the SUBACK.
    pub fn subscribe(&mut self) -> anyhow::Result<()> {
        let mut body = vec![0, 1];
        string(TOPIC, &mut body);
        body.push(0);
        self.stream.write_all(&packet(0x82, &body))?;
        match self.read_packet()? {
            Some((kind, _)) if kind >> 4 == 9 => Ok(()),
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Reads one packet: its first byte and its body. `None` at a clean end.
    pub fn read_packet(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        if self.reader.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut first = [0u8; 1];
        self.reader.read_exact(&mut first)?;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let mut byte = [0u8; 1];
            self.reader.read_exact(&mut byte)?;
            len |= usize::from(byte[0] & 0x7F) << shift;
            if byte[0] & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 21 {
                bail!("malformed remaining length");
            }
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body)?;
        Ok(Some((first[0], body)))
    }
}

/// The application payload of a PUBLISH body at QoS 0 (after the topic).
pub fn publish_payload(body: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + len..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_frames_its_payload() {
        let p = publish(&[7u8; 200]);
        assert_eq!(p[0], 0x30);
        // 2 + 7 (topic) + 200 = 209 = 0xD1 0x01 as a remaining length.
        assert_eq!(&p[1..3], &[0xD1, 0x01]);
        assert_eq!(publish_payload(&p[3..]), Some(&[7u8; 200][..]));
    }
}
