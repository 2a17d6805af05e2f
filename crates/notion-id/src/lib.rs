#![doc = include_str!("../README.md")]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a Notion id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Neither 32 hex digits nor the dashed 8-4-4-4-12 form.
    #[error("invalid Notion id: expected 32 hex digits (dashes optional), got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit (or a dash out of place).
    #[error("invalid Notion id: unexpected character {0:?} at position {1}")]
    Char(char, usize),
}

/// A Notion id (page, block, data source, database, user …).
///
/// Stored as 16 raw bytes, so two spellings of the same id compare equal.
/// `Display` and `Serialize` use the dashed lowercase UUID form;
/// [`NotionId::simple`] gives the 32-hex form Notion uses in URLs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotionId([u8; 16]);

const DASHES: [usize; 4] = [8, 13, 18, 23];

impl NotionId {
    /// Parses `0ef104cd477e80e18571cfd10e92339a` or
    /// `0ef104cd-477e-80e1-8571-cfd10e92339a`, any case, surrounding
    /// whitespace ignored.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let s = s.trim();
        let bytes = s.as_bytes();
        let dashed = match bytes.len() {
            32 => false,
            36 => true,
            n => return Err(IdError::Length(n)),
        };
        let mut out = [0u8; 16];
        let mut nibble = 0usize;
        for (pos, &b) in bytes.iter().enumerate() {
            if dashed && DASHES.contains(&pos) {
                if b != b'-' {
                    return Err(IdError::Char(char::from(b), pos));
                }
                continue;
            }
            let v = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => {
                    let c = s[pos..].chars().next().unwrap_or('?');
                    return Err(IdError::Char(c, pos));
                }
            };
            out[nibble / 2] |= if nibble.is_multiple_of(2) { v << 4 } else { v };
            nibble += 1;
        }
        Ok(Self(out))
    }

    /// Builds an id from its 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// 32 lowercase hex digits, no dashes.
    pub fn simple(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for NotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NotionId({self})")
    }
}

impl FromStr for NotionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for NotionId {
    type Error = IdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl Serialize for NotionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NotionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = NotionId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Notion id (32 hex digits, dashes optional)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NotionId, E> {
                NotionId::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_any_case() {
        let a = NotionId::parse("0ef104cd-477e-80e1-8571-cfd10e92339a").unwrap();
        let b = NotionId::parse("0EF104CD477E80E18571CFD10E92339A").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0ef104cd-477e-80e1-8571-cfd10e92339a");
        assert_eq!(a.simple(), "0ef104cd477e80e18571cfd10e92339a");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(NotionId::parse("abc"), Err(IdError::Length(3)));
        assert!(matches!(
            NotionId::parse("0ef104cd-477e-80e1-8571-cfd10e92339g"),
            Err(IdError::Char('g', 35))
        ));
        assert!(matches!(
            NotionId::parse("0ef104cd0477e-80e1-8571-cfd10e92339a"),
            Err(IdError::Char('0', 8))
        ));
        // 36 chars but dashes in the wrong places
        assert!(NotionId::parse("0ef104cd477e-80e1-8571-cfd10e92339a-").is_err());
        // multi-byte characters never panic
        assert!(NotionId::parse("0ef104cd477e80e18571cfd10e9233é").is_err());
    }

    #[test]
    fn serde_roundtrip() {
        let id: NotionId = serde_json::from_str("\"0ef104cd477e80e18571cfd10e92339a\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"0ef104cd-477e-80e1-8571-cfd10e92339a\""
        );
    }
}
