//! Instants as stored: integer microseconds since the Unix epoch, UTC, the precision both
//! databases keep exactly. One type, so no caller converts by hand.

use std::fmt;

use time::{
    format_description::well_known::{Iso8601, Rfc3339},
    Date, OffsetDateTime,
};

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

    /// Parses an RFC 3339 instant as the API and the CLI accept them: only one that has an
    /// RFC 3339 form in UTC too (an offset can carry `0000-01-01T00:00:00+01:00` into the
    /// year -1, which could be stored but never written out again).
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let at = Self::from(OffsetDateTime::parse(raw, &Rfc3339).ok()?);
        (!at.to_rfc3339().is_empty()).then_some(at)
    }
}

/// A calendar date in exactly the form the API, agreements and record types document,
/// `YYYY-MM-DD`. ISO 8601 parsing alone would also take expanded years (`-000001-01-01`,
/// which storage could not read back), week dates (`2026-W03-4`) and ordinal dates.
pub fn calendar_date(raw: &str) -> Option<Date> {
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, byte)| match i {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    shaped
        .then(|| Date::parse(raw, &Iso8601::DATE).ok())
        .flatten()
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

    /// Found by the enrolment and consent fuzz targets (expanded years were accepted and
    /// stored so that they could not be read back).
    #[test]
    fn only_the_documented_date_form_is_a_calendar_date() {
        assert_eq!(
            calendar_date("2026-01-15"),
            Some(time::macros::date!(2026 - 01 - 15))
        );
        for raw in [
            "-000001-01-01",
            "+002026-01-15",
            "2026-W03-4",
            "2026-015",
            "20260115",
            " 2026-01-15",
            "2026-1-15",
            "2026-02-30",
        ] {
            assert_eq!(calendar_date(raw), None, "{raw}");
        }
    }

    /// Found by the `record_submission` fuzz target: an instant whose UTC year falls outside
    /// 0000-9999 has no RFC 3339 form, so it was stored and then released as `""`.
    #[test]
    fn an_instant_with_no_rfc_3339_form_in_utc_is_refused() {
        for raw in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"] {
            assert_eq!(Timestamp::parse_rfc3339(raw), None, "{raw}");
        }
        for raw in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"] {
            let parsed = Timestamp::parse_rfc3339(raw).unwrap();
            assert!(!parsed.to_rfc3339().is_empty(), "{raw}");
        }
    }
}
