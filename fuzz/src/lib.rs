//! Helpers shared by the fuzz targets: a cursor that reads the fuzzer's
//! bytes as a script of operations (running out of bytes ends the script,
//! never an error), and splitting an input into records.

/// Reads a fuzzer input front to back. Every read past the end yields
/// `None`, so a target simply stops when the input is used up.
pub struct Script<'a> {
    bytes: &'a [u8],
}

impl<'a> Script<'a> {
    /// A script over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Script { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(b)
    }

    /// The next `n` bytes (fewer if the input ends first, `None` if none).
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.is_empty() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = rest;
        Some(head)
    }

    /// A little-endian integer of `width` bytes (1 to 8), shorter at the end.
    pub fn uint(&mut self, width: usize) -> Option<u64> {
        let bytes = self.take(width.clamp(1, 8))?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }

    /// A record: one length byte, then that many bytes.
    pub fn record(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(self.u8()?);
        if len == 0 {
            return Some(&[]);
        }
        self.take(len)
    }

    /// A record with a two-byte little-endian length.
    pub fn long_record(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.uint(2)?).ok()?;
        if len == 0 {
            return Some(&[]);
        }
        self.take(len)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

/// Splits `bytes` into records at every occurrence of `separator` (so a
/// mutation that inserts or removes one moves the boundaries, as it does
/// in libFuzzer's own dictionaries).
pub fn split<'a>(bytes: &'a [u8], separator: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(at) = rest.windows(separator.len()).position(|w| w == separator) {
        out.push(&rest[..at]);
        rest = &rest[at + separator.len()..];
    }
    out.push(rest);
    out
}
