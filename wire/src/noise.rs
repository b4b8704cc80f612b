//! The transport half of a Noise session, sealing and opening in place.
//!
//! snow runs the handshake; its transport state copies every message
//! between a plaintext and a ciphertext buffer. After the handshake this
//! takes the two cipher keys snow split and does what snow's AES-GCM
//! transport does, byte for byte (Noise's `AESGCM` cipher functions:
//! AES-256-GCM, the nonce 32 zero bits then the 64-bit message counter
//! big-endian, no associated data, a 16-byte tag after the ciphertext), on
//! the sender's frame buffer and the receiver's frame decoder buffer
//! directly. A test checks it against snow in both directions.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::error::{Error, Result};

/// Bytes of the authentication tag after each message's ciphertext.
pub(crate) const TAG: usize = 16;

/// One direction of a Noise transport: its key and the next message's
/// counter.
pub(crate) struct Direction {
    key: LessSafeKey,
    counter: u64,
}

impl Direction {
    /// The direction keyed by `key` (one half of the handshake's split),
    /// at counter 0.
    pub(crate) fn new(key: &[u8; 32]) -> Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::Malformed("a noise transport key is not 32 bytes"))?;
        Ok(Direction {
            key: LessSafeKey::new(key),
            counter: 0,
        })
    }

    /// The next message's nonce. Noise reserves the counter's last value:
    /// a session that reaches it ends.
    fn nonce(&mut self) -> Result<Nonce> {
        if self.counter == u64::MAX {
            return Err(Error::Malformed("the noise message counter is exhausted"));
        }
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        Ok(Nonce::assume_unique_for_key(bytes))
    }

    /// Encrypts `plain` in place and returns its tag.
    pub(crate) fn seal(&mut self, plain: &mut [u8]) -> Result<[u8; TAG]> {
        let nonce = self.nonce()?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), plain)
            .map_err(|_| Error::Malformed("a noise message is too long to seal"))?;
        let mut out = [0u8; TAG];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts one message (ciphertext then tag) in place; the plaintext's
    /// length. A message that does not authenticate is an error, and the
    /// counter still moves (the session is over anyway).
    pub(crate) fn open(&mut self, message: &mut [u8]) -> Result<usize> {
        if message.len() < TAG {
            return Err(Error::Malformed("a noise message is shorter than its tag"));
        }
        let nonce = self.nonce()?;
        self.key
            .open_in_place(nonce, Aad::empty(), message)
            .map(|plain| plain.len())
            .map_err(|_| Error::Noise(snow::Error::Decrypt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two snow sessions after an XX handshake, and the raw keys they split.
    fn sessions() -> (
        snow::TransportState,
        snow::TransportState,
        ([u8; 32], [u8; 32]),
    ) {
        let build = || crate::stream::builder().expect("builder");
        let ik = build().generate_keypair().expect("keys");
        let rk = build().generate_keypair().expect("keys");
        let mut i = build()
            .local_private_key(&ik.private)
            .expect("key")
            .build_initiator()
            .expect("initiator");
        let mut r = build()
            .local_private_key(&rk.private)
            .expect("key")
            .build_responder()
            .expect("responder");
        let (mut a, mut b) = (vec![0u8; 1024], vec![0u8; 1024]);
        let n = i.write_message(&[], &mut a).expect("m1");
        r.read_message(&a[..n], &mut b).expect("m1");
        let n = r.write_message(&[], &mut a).expect("m2");
        i.read_message(&a[..n], &mut b).expect("m2");
        let n = i.write_message(&[], &mut a).expect("m3");
        r.read_message(&a[..n], &mut b).expect("m3");
        let split = i.dangerously_get_raw_split();
        assert_eq!(split, r.dangerously_get_raw_split());
        (
            i.into_transport_mode().expect("i"),
            r.into_transport_mode().expect("r"),
            split,
        )
    }

    #[test]
    fn seals_and_opens_exactly_as_snow_does() {
        let (mut i, mut r, (to_responder, to_initiator)) = sessions();
        let mut send = Direction::new(&to_responder).expect("key");
        let mut receive = Direction::new(&to_initiator).expect("key");
        for len in [0usize, 1, 100, 65_535 - TAG] {
            // Ours to snow.
            let plain: Vec<u8> = (0..len).map(|b| b as u8).collect();
            let mut message = plain.clone();
            let tag = send.seal(&mut message).expect("seal");
            message.extend_from_slice(&tag);
            let mut out = vec![0u8; 65_535];
            let n = r.read_message(&message, &mut out).expect("snow opens ours");
            assert_eq!(&out[..n], plain.as_slice());
            // Snow to ours.
            let mut sealed = vec![0u8; 65_535];
            let n = r.write_message(&plain, &mut sealed).expect("snow seals");
            let mut theirs = sealed[..n].to_vec();
            let opened = receive.open(&mut theirs).expect("we open snow's");
            assert_eq!(&theirs[..opened], plain.as_slice());
        }
        // The initiator's own sending direction is unused here; a tampered
        // message fails to open.
        let mut sealed = vec![0u8; 64];
        let n = r.write_message(b"x", &mut sealed).expect("seal");
        sealed[0] ^= 1;
        assert!(receive.open(&mut sealed[..n]).is_err());
        assert!(receive.open(&mut [0u8; TAG - 1]).is_err());
        drop(i.write_message(b"", &mut sealed));
    }
}
