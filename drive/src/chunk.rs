//! Content-defined chunking (FastCDC 2020) of a byte stream, pushed in
//! pieces of any size, in bounded memory (at most one maximum-size chunk
//! plus the piece being pushed).

use fastcdc::v2020::FastCDC;

/// No chunk but a file's last is smaller.
pub const MIN_CHUNK: usize = 16 * 1024;
/// The average chunk the cut points aim for.
pub const AVG_CHUNK: usize = 64 * 1024;
/// No chunk is larger.
pub const MAX_CHUNK: usize = 256 * 1024;

/// Cuts a stream into content-defined chunks: the same bytes give the same
/// cut points wherever they appear, however the stream was split into
/// pushes, so an edit moves only the chunks around it.
#[derive(Debug, Default)]
pub struct Chunker {
    buf: Vec<u8>,
}

/// The length of the first chunk of `data` (all of it when it is short).
fn first_cut(data: &[u8]) -> usize {
    FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
        .next()
        .map_or(data.len(), |c| c.length)
}

impl Chunker {
    /// A chunker at the start of a stream.
    pub fn new() -> Chunker {
        Chunker::default()
    }

    /// Adds `data`; returns the chunks it completed, in order.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut at = 0;
        // A cut found in a window of at least MAX_CHUNK bytes is final:
        // no later byte can move it.
        while self.buf.len() - at >= MAX_CHUNK {
            let rest = self.buf.get(at..).unwrap_or_default();
            let len = first_cut(rest).max(1);
            out.push(rest.get(..len).unwrap_or_default().to_vec());
            at += len;
        }
        self.buf.drain(..at);
        out
    }

    /// Ends the stream: the remaining chunks (none for an empty stream).
    pub fn finish(self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = self.buf.as_slice();
        while !rest.is_empty() {
            let len = first_cut(rest).max(1);
            let (chunk, tail) = rest.split_at(len.min(rest.len()));
            out.push(chunk.to_vec());
            rest = tail;
        }
        out
    }
}

/// The chunks of `data` in one go.
pub fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Chunker::new();
    let mut out = c.push(data);
    out.extend(c.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random()).collect()
    }

    #[test]
    fn bounds_and_edits_stay_local() {
        let data = random(3 << 20, 1);
        let a = chunks(&data);
        assert_eq!(a.concat(), data);
        assert!(a.len() > 20, "{} chunks", a.len());
        for c in &a[..a.len() - 1] {
            assert!((MIN_CHUNK..=MAX_CHUNK).contains(&c.len()), "{}", c.len());
        }
        // An insertion in the middle changes only the chunks near it.
        let mut edited = data.clone();
        edited.splice(1 << 20..1 << 20, *b"inserted");
        let b = chunks(&edited);
        let shared = b.iter().filter(|c| a.contains(c)).count();
        assert!(shared + 3 >= a.len(), "{shared} of {} shared", a.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// However the stream is split into pushes, the chunks are the same.
        #[test]
        fn pushes_do_not_move_cuts(seed in any::<u64>(), len in 0usize..600_000, cuts in proptest::collection::vec(0usize..600_000, 0..6)) {
            let data = random(len, seed);
            let whole = chunks(&data);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            points.sort_unstable();
            let mut c = Chunker::new();
            let mut got = Vec::new();
            let mut from = 0;
            for p in points.into_iter().chain([len]) {
                got.extend(c.push(&data[from..p]));
                from = p;
            }
            got.extend(c.finish());
            prop_assert_eq!(got, whole);
        }
    }
}
