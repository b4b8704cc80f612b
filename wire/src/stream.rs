//! The encrypted stream: a Noise XX handshake over any
//! `AsyncRead + AsyncWrite`, then frames carried in Noise transport messages.
//!
//! Handshake (`Noise_XX_25519_AESGCM_SHA256`; ring provides AES-GCM and
//! SHA-256): the responder's second message and the initiator's third carry
//! a [`Handshake`] payload: the sender's ed25519 identity and its signature
//! over [`IDENTITY_CONTEXT`] ‖ the sender's Noise static key (fresh for each
//! connection). Noise proves possession of the static key; the signature
//! binds it to the identity. On the wire every Noise message is a 2-byte
//! big-endian length, then the message (at most 65,535 bytes); a frame
//! larger than one Noise message is split across several. After the
//! handshake the transport messages are sealed and opened in place
//! (`noise.rs`): frames are encoded once into the buffer that is written,
//! and read straight into the frame decoder's buffer and decrypted there.
//!
//! On a transport that already encrypts and authenticates both peers'
//! ed25519 keys (the swarm's QUIC connections, TLS 1.3 with raw public
//! keys), [`EncryptedStream::secured`] skips Noise: frames go as they are,
//! and the capabilities are bound to that connection by a secret the caller
//! takes from it (the TLS exporter) in place of the Noise handshake hash.

use hyper_core::{KeyPair, PublicKey, Signature};
use prost::Message as _;
use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::capability::Capabilities;
use crate::error::{Error, Result};
use crate::frame::{self, DEFAULT_MAX_FRAME, FrameDecoder};
use crate::messages::{Handshake, Message};
use crate::noise::{Direction, TAG};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";
/// What an identity signs, before its Noise static key.
pub const IDENTITY_CONTEXT: &[u8] = b"hyper-wire 2026 noise static key";
const NOISE_MAX: usize = 65_535;
/// Plaintext bytes per Noise transport message.
const PLAIN_MAX: usize = NOISE_MAX - TAG;

pub(crate) fn builder() -> Result<snow::Builder<'static>> {
    let params = NOISE_PARAMS.parse().map_err(Error::Noise)?;
    Ok(snow::Builder::with_resolver(
        params,
        Box::new(FallbackResolver::new(
            Box::new(RingResolver),
            Box::new(DefaultResolver),
        )),
    ))
}

async fn write_noise<S: AsyncWrite + Unpin>(io: &mut S, message: &[u8]) -> Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| Error::Malformed("noise message over 65,535 bytes"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(message).await?;
    Ok(())
}

/// Reads one Noise message into the front of `buf` and returns it; `None`
/// on a clean end of stream before it. `buf` is sized once for the largest
/// message, so reads do not zero it again.
async fn read_noise<'b, S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>> {
    let mut len = [0u8; 2];
    match io.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if buf.len() < NOISE_MAX {
        buf.resize(NOISE_MAX, 0);
    }
    let message = buf
        .get_mut(..usize::from(u16::from_be_bytes(len)))
        .ok_or(Error::Malformed("noise message over 65,535 bytes"))?;
    io.read_exact(message).await?;
    Ok(Some(message))
}

/// The encoded [`Handshake`] payload proving `identity` for the Noise
/// static key `static_key`: the identity and its signature over
/// [`IDENTITY_CONTEXT`] ‖ `static_key`.
pub fn identity_payload(identity: &KeyPair, static_key: &[u8]) -> Vec<u8> {
    let mut signed = IDENTITY_CONTEXT.to_vec();
    signed.extend_from_slice(static_key);
    Handshake {
        identity: identity.public_key().0.to_vec(),
        signature: identity.sign(&signed).0.to_vec(),
    }
    .encode_to_vec()
}

pub(crate) fn check_identity(payload: &[u8], remote_static: Option<&[u8]>) -> Result<PublicKey> {
    let h = Handshake::decode(payload)?;
    let identity = PublicKey::from_slice(&h.identity).ok_or(Error::Identity)?;
    let signature = Signature::from_slice(&h.signature).ok_or(Error::Identity)?;
    let mut signed = IDENTITY_CONTEXT.to_vec();
    signed.extend_from_slice(remote_static.ok_or(Error::Identity)?);
    if identity.verify(&signed, &signature) {
        Ok(identity)
    } else {
        Err(Error::Identity)
    }
}

/// Seals outgoing frames: the sending direction of a Noise transport, or
/// plain frames on an already secured transport (`noise: None`).
struct Sealer {
    noise: Option<Direction>,
    /// What one send writes: for Noise, each message's length, ciphertext
    /// and tag; else the frames.
    out: Vec<u8>,
}

impl Sealer {
    /// Frames, encrypts and writes `messages` with one write.
    async fn send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        messages: &[Message],
    ) -> Result<()> {
        self.out.clear();
        if self.noise.is_some() {
            // Room for the first Noise message's length.
            self.out.extend_from_slice(&[0, 0]);
        }
        for m in messages {
            frame::encode_into(m, &mut self.out);
        }
        self.seal_and_write(io).await
    }

    /// Sends a keep-alive: an empty frame, which the peer's decoder skips.
    async fn keep_alive<W: AsyncWrite + Unpin>(&mut self, io: &mut W) -> Result<()> {
        self.out.clear();
        if self.noise.is_some() {
            self.out.extend_from_slice(&[0, 0]);
        }
        self.out.push(0);
        self.seal_and_write(io).await
    }

    /// Seals the frames in `out` (after its 2 reserved bytes, when Noise is
    /// on) into Noise messages of at most [`PLAIN_MAX`] plaintext bytes, in
    /// place, and writes them.
    async fn seal_and_write<W: AsyncWrite + Unpin>(&mut self, io: &mut W) -> Result<()> {
        if let Some(noise) = self.noise.as_mut() {
            seal_in_place(noise, &mut self.out)?;
        }
        io.write_all(&self.out).await?;
        io.flush().await?;
        if self.out.capacity() > 4 * NOISE_MAX {
            self.out = Vec::new();
        }
        Ok(())
    }
}

/// Turns `buf` (2 reserved bytes, then plaintext) into Noise messages on
/// the wire: the plaintext cut into pieces of [`PLAIN_MAX`], each after
/// its 2-byte big-endian length and followed by its tag. Pieces move to
/// their places last first, so each byte moves at most once (the first
/// piece, all of a small send, does not move).
fn seal_in_place(noise: &mut Direction, buf: &mut Vec<u8>) -> Result<()> {
    let plain = buf.len().saturating_sub(2);
    let pieces = plain.div_ceil(PLAIN_MAX);
    if pieces == 0 {
        buf.clear();
        return Ok(());
    }
    let stride = PLAIN_MAX + 2 + TAG;
    let last = plain - (pieces - 1) * PLAIN_MAX;
    buf.resize((pieces - 1) * stride + 2 + last + TAG, 0);
    for i in (1..pieces).rev() {
        let len = if i + 1 == pieces { last } else { PLAIN_MAX };
        let from = 2 + i * PLAIN_MAX;
        buf.copy_within(from..from + len, i * stride + 2);
    }
    for i in 0..pieces {
        let len = if i + 1 == pieces { last } else { PLAIN_MAX };
        let at = i * stride;
        let sealed = u16::try_from(len + TAG)
            .map_err(|_| Error::Malformed("noise message over 65,535 bytes"))?;
        let message = buf
            .get_mut(at..at + 2 + len + TAG)
            .ok_or(Error::Malformed("a sealed piece is out of its buffer"))?;
        let (length, rest) = message.split_at_mut(2);
        length.copy_from_slice(&sealed.to_be_bytes());
        let (text, tag) = rest.split_at_mut(len);
        tag.copy_from_slice(&noise.seal(text)?);
    }
    Ok(())
}

/// Opens incoming frames: the receiving direction of a Noise transport, or
/// plain frames on an already secured transport (`noise: None`).
struct Opener {
    noise: Option<Direction>,
    decoder: FrameDecoder,
    /// A read that waits longer than this ends the stream.
    idle: Option<Duration>,
}

/// Runs one read of the stream, failing with [`Error::Idle`] if it takes
/// longer than `idle`.
async fn within<T>(idle: Option<Duration>, read: impl Future<Output = Result<T>>) -> Result<T> {
    match idle {
        None => read.await,
        Some(after) => tokio::time::timeout(after, read)
            .await
            .map_err(|_| Error::Idle(after))?,
    }
}

/// Reads exactly `len` more bytes onto the end of `buf` (into its spare
/// capacity, no zeroing); the stream ending first is an error.
async fn read_onto<R: AsyncRead + Unpin>(io: &mut R, buf: &mut Vec<u8>, len: usize) -> Result<()> {
    use bytes::BufMut as _;
    buf.reserve(len);
    let mut limited = (&mut *buf).limit(len);
    let mut got = 0;
    while got < len {
        let n = io.read_buf(&mut limited).await?;
        if n == 0 {
            return Err(Error::Malformed("the stream ended inside a noise message"));
        }
        got += n;
    }
    Ok(())
}

impl Opener {
    async fn recv<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Option<(Message, usize)>> {
        loop {
            if let Some(frame) = self.decoder.next_frame()? {
                return Ok(Some(frame));
            }
            let buf = self.decoder.unfilled();
            let Some(noise) = self.noise.as_mut() else {
                buf.reserve(NOISE_MAX);
                let n = within(self.idle, async { Ok(io.read_buf(buf).await?) }).await?;
                if n == 0 {
                    return if self.decoder.is_partial() {
                        Err(Error::Malformed("the stream ended inside a frame"))
                    } else {
                        Ok(None)
                    };
                }
                continue;
            };
            let at = buf.len();
            let read = within(self.idle, async {
                let mut len = [0u8; 2];
                match io.read_exact(&mut len).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
                let len = usize::from(u16::from_be_bytes(len));
                read_onto(io, buf, len).await?;
                Ok(true)
            })
            .await?;
            if !read {
                return Ok(None);
            }
            let message = buf.get_mut(at..).unwrap_or_default();
            let plain = noise.open(message)?;
            buf.truncate(at + plain);
        }
    }
}

/// An authenticated, encrypted connection carrying protocol messages.
pub struct EncryptedStream<S> {
    io: S,
    sealer: Sealer,
    opener: Opener,
    remote: PublicKey,
    capabilities: Capabilities,
}

/// The receiving half of an [`EncryptedStream`] (see
/// [`EncryptedStream::into_split`]).
pub struct MessageReader<R> {
    io: R,
    opener: Opener,
}

/// The sending half of an [`EncryptedStream`].
pub struct MessageWriter<W> {
    io: W,
    sealer: Sealer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> EncryptedStream<S> {
    /// Runs the Noise XX handshake as initiator (`true`) or responder,
    /// proving `identity`; fails with [`Error::Identity`] if the peer's
    /// identity proof does not verify.
    pub async fn handshake(mut io: S, identity: &KeyPair, initiator: bool) -> Result<Self> {
        let b = builder()?;
        let keys = b.generate_keypair().map_err(Error::Noise)?;
        let b = b.local_private_key(&keys.private).map_err(Error::Noise)?;
        let mut hs = if initiator {
            b.build_initiator()
        } else {
            b.build_responder()
        }
        .map_err(Error::Noise)?;
        let mut out = vec![0u8; NOISE_MAX];
        let mut inbuf = Vec::new();
        let mut payload = vec![0u8; NOISE_MAX];
        let mut receive = async |io: &mut S, hs: &mut snow::HandshakeState| -> Result<usize> {
            let message = read_noise(io, &mut inbuf).await?.ok_or(Error::Closed)?;
            hs.read_message(message, &mut payload).map_err(Error::Noise)
        };
        let remote = if initiator {
            let n = hs.write_message(&[], &mut out).map_err(Error::Noise)?;
            write_noise(&mut io, &out[..n]).await?;
            io.flush().await?;
            let n = receive(&mut io, &mut hs).await?;
            let remote = check_identity(&payload[..n], hs.get_remote_static())?;
            let n = hs
                .write_message(&identity_payload(identity, &keys.public), &mut out)
                .map_err(Error::Noise)?;
            write_noise(&mut io, &out[..n]).await?;
            remote
        } else {
            receive(&mut io, &mut hs).await?;
            let n = hs
                .write_message(&identity_payload(identity, &keys.public), &mut out)
                .map_err(Error::Noise)?;
            write_noise(&mut io, &out[..n]).await?;
            io.flush().await?;
            let n = receive(&mut io, &mut hs).await?;
            check_identity(&payload[..n], hs.get_remote_static())?
        };
        io.flush().await?;
        let handshake_hash: [u8; 32] = hs
            .get_handshake_hash()
            .try_into()
            .map_err(|_| Error::Malformed("handshake hash is not 32 bytes"))?;
        if !hs.is_handshake_finished() {
            return Err(Error::Malformed("the noise handshake did not finish"));
        }
        // The first key seals the initiator's messages, the second the
        // responder's.
        let (first, second) = hs.dangerously_get_raw_split();
        let (send, receive) = if initiator {
            (first, second)
        } else {
            (second, first)
        };
        Ok(Self::framed(
            io,
            Some((Direction::new(&send)?, Direction::new(&receive)?)),
            remote,
            Capabilities::new(handshake_hash, initiator),
        ))
    }

    /// A stream on a transport that already encrypts and proved the peer's
    /// identity `remote` (for example a QUIC connection authenticated by
    /// ed25519 raw public keys): frames go without Noise. `binding` must be
    /// a secret both ends derive from that one connection (a TLS exporter
    /// value): the channel capabilities are computed from it, so they prove
    /// knowledge of a core key on this connection only.
    pub fn secured(io: S, remote: PublicKey, binding: [u8; 32], initiator: bool) -> Self {
        Self::framed(io, None, remote, Capabilities::new(binding, initiator))
    }

    fn framed(
        io: S,
        noise: Option<(Direction, Direction)>,
        remote: PublicKey,
        capabilities: Capabilities,
    ) -> Self {
        let (send, receive) = noise.unzip();
        EncryptedStream {
            io,
            sealer: Sealer {
                noise: send,
                out: Vec::new(),
            },
            opener: Opener {
                noise: receive,
                decoder: FrameDecoder::new(DEFAULT_MAX_FRAME),
                idle: None,
            },
            remote,
            capabilities,
        }
    }

    /// The peer's proven ed25519 identity.
    pub fn remote_identity(&self) -> PublicKey {
        self.remote
    }

    /// Refuses incoming frames over `max` bytes from now on.
    pub fn set_max_frame(&mut self, max: usize) {
        self.opener.decoder = FrameDecoder::new(max);
    }

    /// This connection's channel capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Encrypts and sends one message.
    pub async fn send(&mut self, message: &Message) -> Result<()> {
        self.sealer
            .send(&mut self.io, std::slice::from_ref(message))
            .await
    }

    /// Encrypts and sends several messages with one write.
    pub async fn send_all(&mut self, messages: &[Message]) -> Result<()> {
        self.sealer.send(&mut self.io, messages).await
    }

    /// The next message; `None` when the peer closed the stream cleanly
    /// between messages. Tampered or truncated ciphertext, an oversized or
    /// undecodable frame are errors: end the connection.
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        Ok(self.opener.recv(&mut self.io).await?.map(|(m, _)| m))
    }

    /// Splits into a reader and a writer that can be used from two tasks.
    pub fn into_split(self) -> (MessageReader<ReadHalf<S>>, MessageWriter<WriteHalf<S>>) {
        let (r, w) = tokio::io::split(self.io);
        (
            MessageReader {
                io: r,
                opener: self.opener,
            },
            MessageWriter {
                io: w,
                sealer: self.sealer,
            },
        )
    }
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// The next message, as [`EncryptedStream::recv`].
    pub async fn recv(&mut self) -> Result<Option<Message>> {
        Ok(self.recv_sized().await?.map(|(m, _)| m))
    }

    /// The next message with the size of its frame in bytes.
    pub async fn recv_sized(&mut self) -> Result<Option<(Message, usize)>> {
        self.opener.recv(&mut self.io).await
    }

    /// Ends the stream with [`Error::Idle`] when a read waits longer than
    /// `idle` (`None`: wait for ever). A peer that keeps a connection open
    /// without traffic sends keep-alives ([`MessageWriter::keep_alive`]).
    pub fn set_idle_timeout(&mut self, idle: Option<Duration>) {
        self.opener.idle = idle;
    }

    /// Refuses incoming frames over `limit` bytes from now on, at most the
    /// stream's maximum (see [`FrameDecoder::set_limit`]). A refused frame
    /// is [`Error::FrameTooLarge`] and consumes nothing: after raising the
    /// limit, [`MessageReader::recv`] reads it.
    pub fn set_frame_limit(&mut self, limit: usize) {
        self.opener.decoder.set_limit(limit);
    }

    /// The largest frame this stream can ever accept.
    pub fn max_frame(&self) -> usize {
        self.opener.decoder.max()
    }
}

impl<W: AsyncWrite + Unpin> MessageWriter<W> {
    /// Encrypts and sends several messages with one write.
    pub async fn send_all(&mut self, messages: &[Message]) -> Result<()> {
        self.sealer.send(&mut self.io, messages).await
    }

    /// Sends a keep-alive (an empty frame: it carries no message, and
    /// resets the peer's idle timer).
    pub async fn keep_alive(&mut self) -> Result<()> {
        self.sealer.keep_alive(&mut self.io).await
    }

    /// Shuts the write direction down (the peer's reader sees the end).
    pub async fn shutdown(&mut self) -> Result<()> {
        self.io.shutdown().await?;
        Ok(())
    }
}
