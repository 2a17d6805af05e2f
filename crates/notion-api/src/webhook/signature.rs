//! `X-Notion-Signature` verification: HMAC-SHA256 over the raw body, compared in constant time.

use std::fmt;

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The header Notion signs deliveries with.
pub const SIGNATURE_HEADER: &str = "X-Notion-Signature";

const PREFIX: &str = "sha256=";

/// Why a delivery's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("missing X-Notion-Signature header")]
    Missing,
    /// The header is not `sha256=<64 hex>`.
    #[error("malformed X-Notion-Signature header: {0}")]
    Malformed(&'static str),
    /// Well-formed, but not the HMAC of this body under this key.
    #[error("X-Notion-Signature does not match the body")]
    Mismatch,
}

/// A parsed `sha256=<hex>` signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(sha256={})", hex::encode(self.0))
    }
}

impl Signature {
    /// Parses `sha256=<64 hex digits>`; the prefix and hex are
    /// case-insensitive, surrounding whitespace is ignored.
    pub fn parse(header: &str) -> Result<Signature, SignatureError> {
        let h = header.trim();
        if h.is_empty() {
            return Err(SignatureError::Missing);
        }
        let (scheme, hexpart) = match h.split_once('=') {
            Some((s, rest)) => (s, rest),
            None => return Err(SignatureError::Malformed("expected sha256=<hex>")),
        };
        if !scheme.eq_ignore_ascii_case(&PREFIX[..PREFIX.len() - 1]) {
            return Err(SignatureError::Malformed(
                "unsupported scheme, expected sha256",
            ));
        }
        if hexpart.len() != 64 {
            return Err(SignatureError::Malformed("expected 64 hex digits"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut out)
            .map_err(|_| SignatureError::Malformed("not hexadecimal"))?;
        Ok(Signature(out))
    }

    /// Checks that this is HMAC-SHA256(`key`, `body`), in constant time.
    pub fn verify(&self, key: &[u8], body: &[u8]) -> Result<(), SignatureError> {
        let mut mac = HmacSha256::new_from_slice(key).map_err(|_| SignatureError::Mismatch)?;
        mac.update(body);
        mac.verify_slice(&self.0)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `sha256=<lowercase hex>` of HMAC-SHA256(`key`, `body`), as Notion sends it.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => return String::from(PREFIX),
    };
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies a delivery: `header` is the `X-Notion-Signature` value (if any),
/// `key` the subscription's verification token, `body` the raw request bytes.
pub fn verify_signature(
    key: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    Signature::parse(header)?.verify(key, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let h = sign(b"k", b"body");
        assert!(h.starts_with("sha256=") && h.len() == 71);
        assert_eq!(verify_signature(b"k", b"body", Some(&h)), Ok(()));
        assert_eq!(
            verify_signature(b"k", b"body", Some(&h.to_uppercase())),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"x", b"body", Some(&h)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"k", b"body", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(b"k", b"body", Some("")),
            Err(SignatureError::Missing)
        );
        assert!(matches!(
            verify_signature(b"k", b"body", Some("sha1=abc")),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_signature(b"k", b"body", Some(&h[..70])),
            Err(SignatureError::Malformed(_))
        ));
        let nonhex = format!("sha256={}", "zz".repeat(32));
        assert!(matches!(
            verify_signature(b"k", b"body", Some(&nonhex)),
            Err(SignatureError::Malformed(_))
        ));
    }
}
