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

/// Bytes of buffer capacity kept once a large frame has been consumed;
/// more is given back, so one big frame does not pin its size for good.
const KEEP_CAPACITY: usize = 256 << 10;

/// Turns a byte stream, fed in pieces of any size, back into messages.
///
/// Memory: the buffer holds at most one unfinished frame (its length checked
/// against the limit before any of its payload is kept) plus the piece last
/// pushed, and shrinks back to [`KEEP_CAPACITY`] once emptied. A frame of
/// length zero is a keep-alive: skipped, it carries no message.
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max: usize,
    limit: usize,
}

impl FrameDecoder {
    /// A decoder that refuses frames over `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max,
            limit: max,
        }
    }

    /// Refuses frames over `limit` bytes from now on (at most the maximum
    /// given to [`FrameDecoder::new`]): a smaller limit holds while the
    /// peer has proved nothing, the full one after.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(self.max);
    }

    /// The largest frame accepted now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The largest frame this decoder can ever accept.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes of buffer held (capacity, not only what is filled).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished frame are held.
    /// The buffer to append incoming bytes to (after the unread ones,
    /// moved to its front when that frees at least half of it): what
    /// [`FrameDecoder::push`] does, for a caller that reads or decrypts
    /// into the buffer itself.
    pub(crate) fn unfilled(&mut self) -> &mut Vec<u8> {
        self.compact();
        &mut self.buf
    }

    /// Drops the bytes already decoded, or moves the rest to the front
    /// when that frees at least half of the buffer.
    fn compact(&mut self) {
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    pub fn is_partial(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. A
    /// frame over the limit is [`Error::FrameTooLarge`] and consumes
    /// nothing (after [`FrameDecoder::set_limit`] raised the limit, the same
    /// frame can be read). After any other error the stream is unusable:
    /// end the connection.
    pub fn next_message(&mut self) -> Result<Option<Message>> {
        Ok(self.next_frame()?.map(|(m, _)| m))
    }

    /// As [`FrameDecoder::next_message`], with the frame's length in bytes.
    pub fn next_frame(&mut self) -> Result<Option<(Message, usize)>> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or_default();
            let Some((len, header)) = varint(pending)? else {
                return Ok(None);
            };
            if len > self.limit as u64 {
                return Err(Error::FrameTooLarge {
                    len,
                    max: self.limit,
                });
            }
            let len = len as usize;
            if len == 0 {
                self.start += header;
                continue;
            }
            let Some(payload) = pending.get(header..header + len) else {
                // Room for exactly this frame, not a doubling past it.
                let missing = header + len - pending.len();
                self.buf.reserve_exact(missing);
                return Ok(None);
            };
            let message = Message::decode(payload)?;
            self.start += header + len;
            return Ok(Some((message, header + len)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Body, Extension};

    fn ext(n: usize) -> Message {
        Message {
            channel: 1,
            body: Some(Body::Extension(Extension {
                name: "x".into(),
                message: vec![3; n],
            })),
        }
    }

    #[test]
    fn keep_alives_are_skipped_and_a_raised_limit_reads_the_held_frame() {
        let mut d = FrameDecoder::new(1 << 20);
        d.set_limit(100);
        let mut bytes = vec![0u8, 0];
        bytes.extend(encode(&ext(10)));
        bytes.extend(encode(&ext(500)));
        d.push(&bytes);
        assert_eq!(d.next_message().expect("small"), Some(ext(10)));
        assert!(matches!(
            d.next_message(),
            Err(Error::FrameTooLarge { max: 100, .. })
        ));
        d.set_limit(usize::MAX);
        assert_eq!(d.limit(), 1 << 20, "clamped to the maximum");
        assert_eq!(d.next_message().expect("now fits"), Some(ext(500)));
        assert_eq!(d.next_message().expect("empty"), None);
    }

    #[test]
    fn the_buffer_shrinks_after_a_large_frame() {
        let mut d = FrameDecoder::new(8 << 20);
        let frame = encode(&ext(4 << 20));
        for piece in frame.chunks(65_000) {
            d.push(piece);
            let _ = d.next_message().expect("valid");
            assert!(d.buffered_capacity() <= frame.len() + 65_000);
        }
        d.push(&encode(&ext(10)));
        assert_eq!(d.next_message().expect("small"), Some(ext(10)));
        assert!(d.buffered_capacity() <= KEEP_CAPACITY);
    }
}
