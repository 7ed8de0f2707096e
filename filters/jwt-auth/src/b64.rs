//! Strict base64url (RFC 7515 section 2): no padding, no other alphabet, no stray trailing bits.

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes unpadded base64url.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STRICT.decode(text)
}

/// Encodes as unpadded base64url.
#[cfg(test)]
pub fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_strict() {
        let table: &[(&str, Option<&[u8]>)] = &[
            ("", Some(b"")),
            ("YQ", Some(b"a")),
            ("YQ==", None),
            ("YR", None),
            ("-_8", Some(&[0xfb, 0xff])),
            ("+/8", None),
            ("Y Q", None),
            ("Y.Q", None),
        ];
        for &(text, want) in table {
            assert_eq!(super::decode(text).ok().as_deref(), want, "{text:?}");
        }
    }
}
