//! How keys, values and blocks are written on the command line and in
//! output: raw bytes (the default), hex or base64 (`--hex`/`--base64`), so
//! data that is not UTF-8 goes in and out unchanged.

use clap::Args;
use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};

use crate::CliError;

/// The encoding flags, one at most.
#[derive(Args, Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Encoding {
    /// Keys, values and blocks, in arguments, input lines and output, are
    /// hex (output lowercase; input either case).
    #[arg(long, conflicts_with = "base64")]
    pub hex: bool,
    /// Keys, values and blocks, in arguments, input lines and output, are
    /// standard base64 with padding.
    #[arg(long)]
    pub base64: bool,
}

impl Encoding {
    /// Whether a text encoding was asked for.
    pub fn is_text(&self) -> bool {
        self.hex || self.base64
    }

    /// The bytes `text` stands for; `what` names it in the error.
    pub fn decode(&self, text: &[u8], what: &str) -> Result<Vec<u8>, String> {
        let codec = if self.hex {
            &HEXLOWER_PERMISSIVE
        } else if self.base64 {
            &BASE64
        } else {
            return Ok(text.to_vec());
        };
        codec.decode(text).map_err(|e| {
            format!(
                "{what} is not {}: {e}",
                if self.hex { "hex" } else { "base64" }
            )
        })
    }

    /// [`Encoding::decode`] of an argument, as a usage error.
    pub fn arg(&self, text: &str, what: &str) -> Result<Vec<u8>, CliError> {
        self.decode(text.as_bytes(), what).map_err(CliError::Usage)
    }

    /// `bytes` as written in output: encoded, or as they are.
    pub fn encode(&self, bytes: &[u8]) -> Vec<u8> {
        if self.hex {
            HEXLOWER_PERMISSIVE.encode(bytes).into_bytes()
        } else if self.base64 {
            BASE64.encode(bytes).into_bytes()
        } else {
            bytes.to_vec()
        }
    }

    /// `bytes` as a JSON string: encoded, or as they are if they are UTF-8;
    /// `what` names them in the error otherwise.
    pub fn text(&self, bytes: &[u8], what: impl FnOnce() -> String) -> Result<String, CliError> {
        String::from_utf8(self.encode(bytes)).map_err(|_| CliError::NotText { what: what() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: Encoding = Encoding {
        hex: true,
        base64: false,
    };
    const B64: Encoding = Encoding {
        hex: false,
        base64: true,
    };

    #[test]
    fn every_encoding_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        for encoding in [HEX, B64, Encoding::default()] {
            let text = encoding.encode(&all);
            assert_eq!(encoding.decode(&text, "x"), Ok(all.clone()));
        }
        assert_eq!(HEX.encode(b"\x00\xff"), b"00ff");
        assert_eq!(B64.encode(b"\x00\xff"), b"AP8=");
        assert_eq!(HEX.decode(b"00FF", "x"), Ok(vec![0, 255]));
    }

    #[test]
    fn bad_input_names_what_it_was() {
        let err = HEX.decode(b"zz", "the key").expect_err("not hex");
        assert!(err.starts_with("the key is not hex"), "{err}");
        let err = B64.decode(b"!", "the value").expect_err("not base64");
        assert!(err.starts_with("the value is not base64"), "{err}");
        let err = Encoding::default()
            .text(b"\xff", || "the value of key 'k'".into())
            .expect_err("not utf-8");
        assert!(err.to_string().contains("--hex"), "{err}");
    }
}
