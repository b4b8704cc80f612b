//! Framing: each frame is its payload's length as an unsigned LEB128 varint,
//! then the payload (one encoded [`Message`]). The decoder refuses a length
//! over its maximum before buffering the payload.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use prost::Message as _;

use crate::error::{Error, Result};
use crate::messages::Message;

/// The largest frame accepted by default: 8 MiB, room for a block of a few
/// MiB with its proof.
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;

/// Encodes `message` as one frame.
pub fn encode(message: &Message) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// Appends `message` as one frame to `buf`.
pub fn encode_into(message: &Message, buf: &mut Vec<u8>) {
    prost::encoding::encode_varint(message.encoded_len() as u64, buf);
    message.encode_raw(buf);
}

/// Reads a varint length from the front of `bytes`: `Ok(None)` if more bytes
/// are needed, else the value and how many bytes it took.
fn varint(bytes: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        let low = u64::from(b & 0x7f);
        if i == 9 && *b > 1 {
            return Err(Error::BadLength);
        }
        value |= low << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 10 {
        return Err(Error::BadLength);
    }
    Ok(None)
}

/// Turns a byte stream, fed in pieces of any size, back into messages.
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished frame are held.
    pub fn is_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. After
    /// an error the stream is unusable: end the connection.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some((len, header)) = varint(pending)? else {
            return Ok(None);
        };
        if len > self.max as u64 {
            return Err(Error::FrameTooLarge { len, max: self.max });
        }
        let len = len as usize;
        let Some(payload) = pending.get(header..header + len) else {
            return Ok(None);
        };
        let message = Message::decode(payload)?;
        self.start += header + len;
        Ok(Some(message))
    }
}
