//! One audit entry: a flat JSON object of strings, integers, booleans, nulls and string
//! arrays (no floats, no nesting), and its leaf data, the RFC 8785 (JCS) canonical JSON
//! of that object. Entries name fields and categories, never values.

use serde::{Deserialize, Serialize};

use super::{Action, LeafIndex};
use crate::domain::Timestamp;
#[cfg(test)]
use serde_json::Value;
use time::{format_description::FormatItem, macros::format_description, PrimitiveDateTime};

/// RFC 3339, UTC, microseconds: the precision both databases keep.
const TIME_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Granted,
    Denied,
    Error,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Granted, Self::Denied, Self::Error]
            .into_iter()
            .find(|d| d.as_str() == raw)
    }
}

/// What a request contributes to its entry; the writer assigns the leaf index.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// Microseconds since the Unix epoch, UTC.
    pub time_micros: i64,
    pub request_id: String,
    pub principal_id: Option<String>,
    pub agency_id: Option<String>,
    pub roles: Vec<String>,
    pub certificate_sha256: Option<String>,
    pub action: Action,
    pub decision: Decision,
    pub reason: String,
    pub purpose: Option<String>,
    pub subject_id: Option<String>,
    pub record_ids: Vec<String>,
    /// `"<agreement id>@<version>"` for each agreement applied.
    pub agreements: Vec<String>,
    pub consent_version: Option<i64>,
    /// For a records read, the hex SHA-256 of the record type definitions it decided by
    /// (`record_type_catalogues`), so that a replay uses exactly those.
    pub record_types_sha256: Option<String>,
    /// For an entry that stands for several refused requests (see `audit::refusals`),
    /// how many.
    pub refusals: Option<u64>,
    /// `"type.field:category"` released.
    pub released: Vec<String>,
    /// `"type.field:category"` withheld.
    pub withheld: Vec<String>,
    pub break_glass: bool,
    pub justification: Option<String>,
    /// Hex SHA-256 of the response body sent, when it was known before sending.
    pub response_sha256: Option<String>,
}

impl PendingEntry {
    /// An entry for `action` now, with every optional part empty.
    pub fn new(request_id: &str, action: Action, decision: Decision, reason: &str) -> Self {
        Self {
            time_micros: crate::domain::Timestamp::now().micros(),
            request_id: request_id.to_owned(),
            principal_id: None,
            agency_id: None,
            roles: Vec::new(),
            certificate_sha256: None,
            action,
            decision,
            reason: reason.to_owned(),
            purpose: None,
            subject_id: None,
            record_ids: Vec::new(),
            agreements: Vec::new(),
            consent_version: None,
            record_types_sha256: None,
            refusals: None,
            released: Vec::new(),
            withheld: Vec::new(),
            break_glass: false,
            justification: None,
            response_sha256: None,
        }
    }

    pub fn at_index(self, leaf_index: LeafIndex) -> AuditEntry {
        AuditEntry {
            leaf_index: leaf_index.0,
            time: format_time(Timestamp::from_micros(self.time_micros)),
            request_id: self.request_id,
            principal_id: self.principal_id,
            agency_id: self.agency_id,
            roles: self.roles,
            certificate_sha256: self.certificate_sha256,
            action: self.action.name().to_owned(),
            decision: self.decision,
            reason: self.reason,
            purpose: self.purpose,
            subject_id: self.subject_id,
            record_ids: self.record_ids,
            agreements: self.agreements,
            consent_version: self.consent_version,
            record_types_sha256: self.record_types_sha256,
            refusals: self.refusals,
            released: self.released,
            withheld: self.withheld,
            break_glass: self.break_glass,
            justification: self.justification,
            response_sha256: self.response_sha256,
        }
    }
}

/// An entry as hashed, exported and served.
///
/// The members are declared in RFC 8785 order (sorted by name) because serde_json writes
/// struct members in declaration order, compactly, with ECMAScript string escaping: so
/// serialising this struct *is* its canonical form, with no intermediate tree. A test holds
/// it to the general canonicaliser below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub action: String,
    pub agency_id: Option<String>,
    /// `"<agreement id>@<version>"` for each agreement applied.
    pub agreements: Vec<String>,
    pub break_glass: bool,
    pub certificate_sha256: Option<String>,
    pub consent_version: Option<i64>,
    pub decision: Decision,
    pub justification: Option<String>,
    pub leaf_index: u64,
    pub principal_id: Option<String>,
    pub purpose: Option<String>,
    pub reason: String,
    pub record_ids: Vec<String>,
    /// For a records read, the hex SHA-256 of the record type definitions it decided by:
    /// absent from every other entry (so entries written before it existed keep their
    /// hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_types_sha256: Option<String>,
    /// How many refused requests this entry stands for, when more than one: absent from
    /// every other entry (so entries written before it existed keep their hashes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusals: Option<u64>,
    /// `"type.field:category"` released.
    pub released: Vec<String>,
    pub request_id: String,
    /// Hex SHA-256 of the response body sent, when it was known before sending.
    pub response_sha256: Option<String>,
    pub roles: Vec<String>,
    pub subject_id: Option<String>,
    /// RFC 3339 UTC with microseconds.
    pub time: String,
    /// `"type.field:category"` withheld.
    pub withheld: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeafDataError {
    #[error("leaf data is not an audit entry: {0}")]
    Parse(String),
    #[error("leaf data is not in canonical form")]
    NotCanonical,
    #[error("entry holds a value JCS cannot carry here: {0}")]
    Unsupported(&'static str),
}

impl AuditEntry {
    /// The RFC 8785 canonical JSON of this entry: the bytes that are hashed.
    pub fn leaf_data(&self) -> Result<Vec<u8>, LeafDataError> {
        // I-JSON: integers beyond 2^53 would lose precision in other readers.
        const SAFE: u64 = 1 << 53;
        if self.leaf_index > SAFE
            || self
                .consent_version
                .is_some_and(|v| v.unsigned_abs() > SAFE)
        {
            return Err(LeafDataError::Unsupported("an integer beyond 2^53"));
        }
        let mut out = Vec::with_capacity(640);
        serde_json::to_writer(&mut out, self).map_err(|e| LeafDataError::Parse(e.to_string()))?;
        Ok(out)
    }

    /// Parses leaf data and insists it is exactly the canonical encoding of what it holds,
    /// so one entry cannot have two encodings (and two hashes).
    pub fn from_leaf_data(data: &[u8]) -> Result<Self, LeafDataError> {
        let entry: Self =
            serde_json::from_slice(data).map_err(|e| LeafDataError::Parse(e.to_string()))?;
        if entry.leaf_data()? != data {
            return Err(LeafDataError::NotCanonical);
        }
        Ok(entry)
    }

    pub fn time_micros(&self) -> Option<i64> {
        // The format's `Z` is a literal, so parse the wall time and declare it UTC.
        PrimitiveDateTime::parse(&self.time, TIME_FORMAT)
            .ok()
            .map(|t| Timestamp::from(t.assume_utc()).micros())
    }
}

/// An instant as entries write it: RFC 3339, UTC, always six fraction digits.
pub fn format_time(at: Timestamp) -> String {
    at.to_datetime()
        .and_then(|t| t.format(TIME_FORMAT).ok())
        .unwrap_or_default()
}

/// The general RFC 8785 canonicaliser for the values audit entries may hold, kept as the
/// reference that [`AuditEntry::leaf_data`] is tested against: members sorted by key (all keys are
/// ASCII, so byte order is UTF-16 order), no insignificant whitespace, strings escaped as
/// ECMAScript does (serde_json's escaping is the same: `\"`, `\\`, `\b \f \n \r \t`,
/// other controls as lowercase `\u00xx`, everything else literal), integers in decimal.
#[cfg(test)]
fn canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), LeafDataError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            // I-JSON: integers beyond 2^53 lose precision in other readers.
            let fits = n.as_i64().is_some_and(|i| i.unsigned_abs() <= 1 << 53)
                || n.as_u64().is_some_and(|u| u <= 1 << 53);
            if !fits {
                return Err(LeafDataError::Unsupported(
                    "a float or an integer beyond 2^53",
                ));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => string(s, out)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !item.is_string() {
                    return Err(LeafDataError::Unsupported("an array of non-strings"));
                }
                canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort_unstable();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(key, out)?;
                out.push(b':');
                match members.get(key) {
                    Some(Value::Object(_)) => {
                        return Err(LeafDataError::Unsupported("a nested object"))
                    }
                    Some(member) => canonical(member, out)?,
                    None => {}
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
fn string(s: &str, out: &mut Vec<u8>) -> Result<(), LeafDataError> {
    serde_json::to_writer(&mut *out, s).map_err(|e| LeafDataError::Parse(e.to_string()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> AuditEntry {
        let mut pending = PendingEntry::new(
            "req-1",
            crate::audit::Action::WhoamiRead,
            Decision::Granted,
            "ok",
        );
        pending.time_micros = 1_764_352_800_123_456;
        pending.principal_id = Some("police-mentor".into());
        pending.roles = vec!["practitioner".into()];
        pending.released = vec!["health.crisis_plan.triggers:crisis_plan".into()];
        pending.consent_version = Some(3);
        pending.at_index(LeafIndex(41))
    }

    #[test]
    fn leaf_data_is_sorted_compact_and_round_trips() {
        let entry = sample();
        let data = entry.leaf_data().unwrap();
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            text.starts_with(
                r#"{"action":"whoami.read","agency_id":null,"agreements":[],"break_glass":false"#
            ),
            "{text}"
        );
        assert!(text.contains(r#""leaf_index":41,"#));
        assert!(
            text.contains(r#""time":"2025-11-28T18:00:00.123456Z""#),
            "{text}"
        );
        assert!(!text.contains(' ') || text.contains("\" "), "{text}");
        assert_eq!(AuditEntry::from_leaf_data(&data).unwrap(), entry);
    }

    #[test]
    fn strings_are_escaped_as_rfc_8785_requires() {
        let mut entry = sample();
        entry.justification = Some("a\nb \"q\" \\ \t \u{7} é € 😀 \u{2028}".into());
        let data = entry.leaf_data().unwrap();
        let text = std::str::from_utf8(&data).unwrap();
        for expected in [
            r"a\nb",
            r#"\"q\""#,
            r"\\",
            r"\t",
            r"\u0007",
            "é € 😀",
            "\u{2028}",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
    }

    #[test]
    fn non_canonical_encodings_of_an_entry_are_refused() {
        let data = String::from_utf8(sample().leaf_data().unwrap()).unwrap();
        let spaced = data.replacen(",", ", ", 1);
        assert_eq!(
            AuditEntry::from_leaf_data(spaced.as_bytes()),
            Err(LeafDataError::NotCanonical)
        );
        let extra = data.replacen("{", r#"{"extra":1,"#, 1);
        assert!(matches!(
            AuditEntry::from_leaf_data(extra.as_bytes()),
            Err(LeafDataError::Parse(_))
        ));
    }

    #[test]
    fn only_an_entry_standing_for_several_refusals_has_the_member() {
        let plain = String::from_utf8(sample().leaf_data().unwrap()).unwrap();
        assert!(!plain.contains("refusals"), "{plain}");
        let mut coalesced = sample();
        coalesced.refusals = Some(499);
        let data = coalesced.leaf_data().unwrap();
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            text.contains(r#""record_ids":[],"refusals":499,"released":"#),
            "{text}"
        );
        assert_eq!(AuditEntry::from_leaf_data(&data).unwrap(), coalesced);
        let explicit_null = plain.replacen(r#""released":"#, r#""refusals":null,"released":"#, 1);
        assert_eq!(
            AuditEntry::from_leaf_data(explicit_null.as_bytes()),
            Err(LeafDataError::NotCanonical)
        );
    }

    #[test]
    fn only_a_records_read_names_the_record_type_definitions() {
        let plain = String::from_utf8(sample().leaf_data().unwrap()).unwrap();
        assert!(!plain.contains("record_types_sha256"), "{plain}");
        let mut read = sample();
        read.record_types_sha256 = Some("ab".repeat(32));
        let data = read.leaf_data().unwrap();
        let text = std::str::from_utf8(&data).unwrap();
        assert!(
            text.contains(&format!(
                r#""record_ids":[],"record_types_sha256":"{}","released":"#,
                "ab".repeat(32)
            )),
            "{text}"
        );
        assert_eq!(AuditEntry::from_leaf_data(&data).unwrap(), read);
    }

    #[test]
    fn members_are_declared_in_canonical_order() {
        let mut entry = sample();
        entry.refusals = Some(2);
        entry.record_types_sha256 = Some("00".repeat(32));
        let value = serde_json::to_value(&entry).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let text = String::from_utf8(entry.leaf_data().unwrap()).unwrap();
        let mut positions: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        let sorted = {
            let mut p = positions.clone();
            p.sort_unstable();
            p
        };
        assert_eq!(positions, sorted, "members out of order in {text}");
        positions.dedup();
        assert_eq!(positions.len(), 22);
    }

    proptest! {
        #[test]
        fn leaf_data_equals_the_general_canonical_form(
            reason in any::<String>(),
            justification in proptest::option::of(any::<String>()),
            released in proptest::collection::vec(any::<String>(), 0..4),
            version in proptest::option::of(-(1i64 << 53)..(1i64 << 53)),
            refusals in proptest::option::of(2u64..1_000_000),
            record_types in proptest::option::of("[0-9a-f]{64}"),
        ) {
            let mut entry = sample();
            entry.refusals = refusals;
            entry.record_types_sha256 = record_types;
            entry.reason = reason;
            entry.justification = justification;
            entry.released = released;
            entry.consent_version = version;
            let mut reference = Vec::new();
            canonical(&serde_json::to_value(&entry).unwrap(), &mut reference).unwrap();
            prop_assert_eq!(entry.leaf_data().unwrap(), reference);
        }

        #[test]
        fn any_text_round_trips_through_canonical_leaf_data(reason in any::<String>(), request in "[ -~]{0,40}") {
            let mut entry = sample();
            entry.reason = reason;
            entry.request_id = request;
            let data = entry.leaf_data().unwrap();
            prop_assert_eq!(AuditEntry::from_leaf_data(&data).unwrap(), entry);
        }
    }
}
