//! Instants as stored: integer microseconds since the Unix epoch, UTC, the precision both
//! databases keep exactly. One type, so no caller converts by hand.

use std::fmt;

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Self = Self(i64::MIN);

    pub fn now() -> Self {
        Self::from(OffsetDateTime::now_utc())
    }

    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// `None` beyond the year 9999 (a stored value no clock produced).
    pub fn to_datetime(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()
    }

    /// RFC 3339, UTC, as the API writes instants (whole seconds when there are no
    /// fractions, as `time` formats them).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    /// `hours` earlier (saturating).
    pub fn hours_before(self, hours: i64) -> Self {
        Self(self.0.saturating_sub(hours.saturating_mul(3_600_000_000)))
    }

    /// Parses an RFC 3339 instant as the API and the CLI accept them.
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        OffsetDateTime::parse(raw, &Rfc3339).ok().map(Self::from)
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(at: OffsetDateTime) -> Self {
        Self(i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn round_trips_through_microseconds() {
        let at = datetime!(2026-03-01 12:30:00.123456 UTC);
        let stamp = Timestamp::from(at);
        assert_eq!(stamp.micros(), 1_772_368_200_123_456);
        assert_eq!(stamp.to_datetime(), Some(at));
        assert_eq!(
            Timestamp::parse_rfc3339("2026-03-01T12:30:00.123456Z"),
            Some(stamp)
        );
        assert_eq!(
            stamp.hours_before(1).micros(),
            stamp.micros() - 3_600_000_000
        );
    }
}
