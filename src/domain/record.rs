//! Records: documents about a subject contributed by the agency that holds them.

use std::fmt;

use serde::Serialize;

use super::{parse_random_id, random_id, InvalidValue};

/// A record's random id: `rec_` and 26 base32 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    pub fn generate() -> Self {
        Self(random_id("rec_"))
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_random_id("rec_", raw)
            .map(Self)
            .ok_or_else(|| InvalidValue::new("record_id", "is not a record id"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
