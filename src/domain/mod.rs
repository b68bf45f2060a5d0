//! Pure types and rules of the programme, with no I/O: agencies and principals, subjects
//! and their identifiers, consent, purposes, record types, agreements and the evaluation
//! table. Values here can only be built valid.

pub mod agency;
pub mod agreement;
pub mod consent;
pub mod evaluation;
pub mod principal;
pub mod purpose;
pub mod record;
pub mod record_type;
pub mod subject;
pub mod timestamp;

pub use agency::{Agency, AgencyId, AgencyKind};
pub use principal::{CertificateBinding, Principal, PrincipalId, PrincipalStatus, Role};
pub use timestamp::Timestamp;

/// The position of an entry in the tree, from 0. Stored as a signed 64-bit integer (both
/// databases' widest), so every index the tree can reach fits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct LeafIndex(pub u64);

impl LeafIndex {
    /// The column value; `None` beyond `i64::MAX`, which no tree reaches.
    pub fn stored(self) -> Option<i64> {
        i64::try_from(self.0).ok()
    }

    /// From a stored column value (never negative for a row the gateway wrote).
    pub fn from_stored(value: i64) -> Self {
        Self(u64::try_from(value).unwrap_or_default())
    }
}

impl std::fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether people's free text (names, evidence, reasons) may not hold `c`: control
/// characters other than line breaks and tabs, and the Unicode bidirectional controls,
/// which can make text shown to a reviewer read differently from what is stored
/// ("Trojan Source"). Right-to-left scripts need none of them.
pub fn is_forbidden_in_text(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A value that failed to parse, with the field it came from, so every layer can say which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    pub field: &'static str,
    pub message: String,
}

impl InvalidValue {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Ids of agencies and principals are short lowercase slugs (`hampshire-police`), so they
/// are safe in file names, URLs, logs and certificate names alike.
pub(crate) fn parse_slug(field: &'static str, raw: &str) -> Result<String, InvalidValue> {
    let valid_chars = raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let edges_ok = !raw.starts_with('-') && !raw.ends_with('-');
    if (2..=64).contains(&raw.len()) && valid_chars && edges_ok {
        Ok(raw.to_owned())
    } else {
        Err(InvalidValue::new(
            field,
            "must be 2 to 64 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// `prefix` and 26 base32 characters: 128 random bits that say nothing about what they name.
pub(crate) fn random_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut bits = u128::from_be_bytes(bytes);
    let mut id = String::with_capacity(prefix.len() + 26);
    id.push_str(prefix);
    for _ in 0..26 {
        id.push(char::from(
            *BASE32.get((bits & 31) as usize).unwrap_or(&b'a'),
        ));
        bits >>= 5;
    }
    id
}

pub(crate) fn parse_random_id(prefix: &str, raw: &str) -> Option<String> {
    let valid = raw.len() == prefix.len() + 26
        && raw.starts_with(prefix)
        && raw.bytes().skip(prefix.len()).all(|b| BASE32.contains(&b));
    valid.then(|| raw.to_owned())
}

/// Implements the string conversions shared by slug-shaped id newtypes.
macro_rules! slug_id {
    ($name:ident, $field:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, $crate::domain::InvalidValue> {
                $crate::domain::parse_slug($field, raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::InvalidValue;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }
    };
}
pub(crate) use slug_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_may_not_hold_controls_or_direction_overrides() {
        for forbidden in [
            '\u{0}', '\u{1b}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_forbidden_in_text(forbidden), "{forbidden:?}");
        }
        for allowed in ['a', '\n', '\t', '\r', 'é', 'ש', 'ع', '\u{200D}'] {
            assert!(!is_forbidden_in_text(allowed), "{allowed:?}");
        }
    }

    #[test]
    fn slugs_accept_agency_like_ids() {
        for ok in ["iow-nhs", "hampshire-police", "a1", "scas"] {
            assert!(parse_slug("id", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn slugs_refuse_anything_unsafe_in_a_path_or_name() {
        for bad in [
            "", "a", "-lead", "trail-", "Upper", "dot.ted", "../etc", "sp ace", "x/y",
        ] {
            assert!(parse_slug("id", bad).is_err(), "{bad:?}");
        }
        assert!(parse_slug("id", &"a".repeat(65)).is_err());
    }
}
