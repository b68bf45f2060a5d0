//! Consent: what a person agreed to share, recorded as versions that are never
//! overwritten, and the effective consent at an instant that the rules use.

use std::{collections::BTreeSet, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::{record_type::RecordTypes, AgencyId, InvalidValue, Timestamp};

/// Ordered: `none < crisis < coordination < full`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConsentLevel {
    None,
    Crisis,
    Coordination,
    Full,
}

impl ConsentLevel {
    pub const ALL: [Self; 4] = [Self::None, Self::Crisis, Self::Coordination, Self::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Crisis => "crisis",
            Self::Coordination => "coordination",
            Self::Full => "full",
        }
    }
}

impl fmt::Display for ConsentLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConsentLevel {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str() == raw)
            .ok_or_else(|| InvalidValue::new("level", "must be none, crisis, coordination or full"))
    }
}

/// One version of a subject's consent: a consent given, or a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentVersion {
    pub version: i32,
    pub kind: ConsentKind,
    /// When it was recorded in the gateway.
    pub recorded_at: Timestamp,
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentKind {
    Given {
        level: ConsentLevel,
        /// The agencies covered; `None` covers every party.
        agencies: Option<BTreeSet<AgencyId>>,
        excluded_categories: BTreeSet<String>,
        given_on: Date,
        expires_on: Option<Date>,
    },
    Withdrawn {
        withdrawn_on: Date,
    },
}

impl ConsentKind {
    /// As stored and shown: `given` or `withdrawn`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Given { .. } => "given",
            Self::Withdrawn { .. } => "withdrawn",
        }
    }
}

/// A consent is given on or before `today` (it may be recorded late, never early) and, if
/// it expires, expires after the day it was given.
pub fn check_given(
    given_on: Date,
    expires_on: Option<Date>,
    today: Date,
) -> Result<(), InvalidValue> {
    if given_on > today {
        return Err(InvalidValue::new("given_on", "must not be in the future"));
    }
    if expires_on.is_some_and(|expires| expires <= given_on) {
        return Err(InvalidValue::new("expires_on", "must be after given_on"));
    }
    Ok(())
}

/// A withdrawal takes effect at once, so it cannot be dated ahead.
pub fn check_withdrawn(withdrawn_on: Date, today: Date) -> Result<(), InvalidValue> {
    if withdrawn_on > today {
        return Err(InvalidValue::new(
            "withdrawn_on",
            "must not be in the future",
        ));
    }
    Ok(())
}

/// The categories a person withholds. Any category the record types declare may be
/// withheld, including those the record-types file adds: an agreement may share those
/// too. The refusal does not repeat what was sent.
pub fn excluded_categories(
    raw: Vec<String>,
    record_types: &RecordTypes,
) -> Result<BTreeSet<String>, InvalidValue> {
    let mut excluded = BTreeSet::new();
    for category in raw {
        if !record_types.has_category(&category) {
            return Err(InvalidValue::new(
                "excluded_categories",
                "names a category no record type declares",
            ));
        }
        excluded.insert(category);
    }
    Ok(excluded)
}

/// The consent the rules apply at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveConsent {
    pub level: ConsentLevel,
    /// The version it comes from; `None` when no consent has ever been in force.
    pub version: Option<i32>,
    pub agencies: Option<BTreeSet<AgencyId>>,
    pub excluded_categories: BTreeSet<String>,
}

impl EffectiveConsent {
    fn none(version: Option<i32>) -> Self {
        Self {
            level: ConsentLevel::None,
            version,
            agencies: None,
            excluded_categories: BTreeSet::new(),
        }
    }

    /// Whether the consent covers `agency` (absent list = every party).
    pub fn covers(&self, agency: &AgencyId) -> bool {
        self.agencies
            .as_ref()
            .is_none_or(|agencies| agencies.contains(agency))
    }
}

/// The newest version in force at `at`: recorded by then and dated on or before that day.
/// A withdrawal, an expiry, or no version at all gives `none`. An expired or withdrawn
/// newest version does not fall back to an older one: consent is not revived by time.
pub fn effective_at(history: &[ConsentVersion], at: OffsetDateTime) -> EffectiveConsent {
    let (day, at) = (at.date(), Timestamp::from(at));
    let in_force = history
        .iter()
        .filter(|v| v.recorded_at <= at)
        .filter(|v| match &v.kind {
            ConsentKind::Given { given_on, .. } => *given_on <= day,
            ConsentKind::Withdrawn { withdrawn_on } => *withdrawn_on <= day,
        })
        .max_by_key(|v| v.version);
    in_force.map_or_else(
        || EffectiveConsent::none(None),
        |newest| newest.effective_on(day),
    )
}

/// The consent an audit entry says was applied (`consent_version`, `None` for none ever in
/// force), as it stood on `day`: what a replay of that decision applies. `None` when the
/// history has no such version.
pub fn as_applied(
    history: &[ConsentVersion],
    version: Option<i32>,
    day: Date,
) -> Option<EffectiveConsent> {
    match version {
        None => Some(EffectiveConsent::none(None)),
        Some(version) => history
            .iter()
            .find(|v| v.version == version)
            .map(|v| v.effective_on(day)),
    }
}

impl ConsentVersion {
    /// What this version means on `day` when it is the newest in force: a withdrawal or an
    /// expiry gives `none`.
    fn effective_on(&self, day: Date) -> EffectiveConsent {
        match &self.kind {
            ConsentKind::Withdrawn { .. } => EffectiveConsent::none(Some(self.version)),
            ConsentKind::Given {
                expires_on: Some(expires),
                ..
            } if *expires < day => EffectiveConsent::none(Some(self.version)),
            ConsentKind::Given {
                level,
                agencies,
                excluded_categories,
                ..
            } => EffectiveConsent {
                level: *level,
                version: Some(self.version),
                agencies: agencies.clone(),
                excluded_categories: excluded_categories.clone(),
            },
        }
    }
}

/// The day the consent in force at `at` runs out, if it was given with an expiry and
/// releases anything: a lapsed or withdrawn consent, or one at `none`, has nothing left to
/// run out.
pub fn expires_on(history: &[ConsentVersion], at: OffsetDateTime) -> Option<Date> {
    let effective = effective_at(history, at);
    if effective.level == ConsentLevel::None {
        return None;
    }
    let version = effective.version?;
    match history.iter().find(|v| v.version == version)?.kind {
        ConsentKind::Given { expires_on, .. } => expires_on,
        ConsentKind::Withdrawn { .. } => None,
    }
}

/// Consent in force is reviewed with the person at least once a year, and before it
/// expires: the review falls due on the earlier of its expiry and a year after it was
/// given. `None` when no consent is in force (there is nothing to review, only to seek).
pub fn review_due(history: &[ConsentVersion], at: OffsetDateTime) -> Option<Date> {
    let effective = effective_at(history, at);
    let version = effective.version?;
    if effective.level == ConsentLevel::None {
        return None;
    }
    let ConsentKind::Given {
        given_on,
        expires_on,
        ..
    } = &history.iter().find(|v| v.version == version)?.kind
    else {
        return None;
    };
    let a_year_on = given_on
        .replace_year(given_on.year() + 1)
        .unwrap_or_else(|_| *given_on + time::Duration::days(365));
    Some(expires_on.map_or(a_year_on, |expires| expires.min(a_year_on)))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn a_consent_runs_out_only_while_it_is_in_force_and_releases_something() {
        let at = datetime!(2026-06-01 12:00 UTC);
        let with_expiry = |level| {
            vec![ConsentVersion {
                version: 1,
                kind: ConsentKind::Given {
                    level,
                    agencies: None,
                    excluded_categories: BTreeSet::new(),
                    given_on: date!(2026 - 01 - 01),
                    expires_on: Some(date!(2026 - 06 - 20)),
                },
                recorded_at: Timestamp::from(datetime!(2026-01-01 09:00 UTC)),
                recorded_by: "coordinator".into(),
            }]
        };
        assert_eq!(
            expires_on(&with_expiry(ConsentLevel::Crisis), at),
            Some(date!(2026 - 06 - 20))
        );
        // A consent at `none` releases nothing: nothing to renew.
        assert_eq!(expires_on(&with_expiry(ConsentLevel::None), at), None);
        // Lapsed: no longer in force.
        assert_eq!(
            expires_on(
                &with_expiry(ConsentLevel::Crisis),
                datetime!(2026-06-21 12:00 UTC)
            ),
            None
        );
        // Withdrawn since.
        let mut withdrawn = with_expiry(ConsentLevel::Crisis);
        withdrawn.push(ConsentVersion {
            version: 2,
            kind: ConsentKind::Withdrawn {
                withdrawn_on: date!(2026 - 05 - 01),
            },
            recorded_at: Timestamp::from(datetime!(2026-05-01 09:00 UTC)),
            recorded_by: "coordinator".into(),
        });
        assert_eq!(expires_on(&withdrawn, at), None);
    }

    fn given(
        version: i32,
        level: ConsentLevel,
        given_on: Date,
        expires_on: Option<Date>,
        recorded_at: OffsetDateTime,
    ) -> ConsentVersion {
        ConsentVersion {
            version,
            kind: ConsentKind::Given {
                level,
                agencies: None,
                excluded_categories: BTreeSet::new(),
                given_on,
                expires_on,
            },
            recorded_at: Timestamp::from(recorded_at),
            recorded_by: "coordinator".into(),
        }
    }

    fn withdrawn(version: i32, on: Date, recorded_at: OffsetDateTime) -> ConsentVersion {
        ConsentVersion {
            version,
            kind: ConsentKind::Withdrawn { withdrawn_on: on },
            recorded_at: Timestamp::from(recorded_at),
            recorded_by: "coordinator".into(),
        }
    }

    #[test]
    fn levels_are_ordered() {
        assert!(
            ConsentLevel::None < ConsentLevel::Crisis
                && ConsentLevel::Crisis < ConsentLevel::Coordination
                && ConsentLevel::Coordination < ConsentLevel::Full
        );
    }

    #[test]
    fn effective_consent_over_versions_withdrawal_expiry_and_time() {
        let t0 = datetime!(2026-01-10 09:00 UTC);
        let history = vec![
            given(1, ConsentLevel::Crisis, date!(2026 - 01 - 10), None, t0),
            given(
                2,
                ConsentLevel::Full,
                date!(2026 - 03 - 01),
                Some(date!(2026 - 06 - 30)),
                datetime!(2026-03-01 10:00 UTC),
            ),
            withdrawn(3, date!(2026 - 05 - 01), datetime!(2026-05-01 12:00 UTC)),
            given(
                4,
                ConsentLevel::Coordination,
                date!(2026 - 08 - 01),
                None,
                datetime!(2026-08-01 08:00 UTC),
            ),
        ];
        let cases = [
            (
                datetime!(2026-01-09 12:00 UTC),
                ConsentLevel::None,
                Option::None,
            ), // before any consent
            (
                datetime!(2026-01-10 09:00 UTC),
                ConsentLevel::Crisis,
                Some(1),
            ), // recorded that instant
            (
                datetime!(2026-02-01 00:00 UTC),
                ConsentLevel::Crisis,
                Some(1),
            ),
            (
                datetime!(2026-03-01 09:59 UTC),
                ConsentLevel::Crisis,
                Some(1),
            ), // v2 not yet recorded
            (datetime!(2026-03-01 10:00 UTC), ConsentLevel::Full, Some(2)),
            (datetime!(2026-05-01 11:59 UTC), ConsentLevel::Full, Some(2)), // withdrawal not yet recorded
            (datetime!(2026-05-01 12:00 UTC), ConsentLevel::None, Some(3)), // withdrawn at once
            (datetime!(2026-07-15 00:00 UTC), ConsentLevel::None, Some(3)), // v2 would have expired anyway
            (
                datetime!(2026-08-01 08:00 UTC),
                ConsentLevel::Coordination,
                Some(4),
            ),
        ];
        for (at, level, version) in cases {
            let effective = effective_at(&history, at);
            assert_eq!(
                (effective.level, effective.version),
                (level, version),
                "at {at}"
            );
        }
    }

    #[test]
    fn an_expired_newest_version_is_none_and_does_not_revive_an_older_one() {
        let history = vec![
            given(
                1,
                ConsentLevel::Full,
                date!(2026 - 01 - 01),
                None,
                datetime!(2026-01-01 0:00 UTC),
            ),
            given(
                2,
                ConsentLevel::Crisis,
                date!(2026 - 02 - 01),
                Some(date!(2026 - 02 - 28)),
                datetime!(2026-02-01 0:00 UTC),
            ),
        ];
        assert_eq!(
            effective_at(&history, datetime!(2026-02-28 23:59 UTC)).level,
            ConsentLevel::Crisis
        );
        let after = effective_at(&history, datetime!(2026-03-01 00:00 UTC));
        assert_eq!((after.level, after.version), (ConsentLevel::None, Some(2)));
    }

    #[test]
    fn a_consent_dated_in_the_future_is_not_yet_in_force() {
        let history = vec![given(
            1,
            ConsentLevel::Full,
            date!(2026 - 12 - 01),
            None,
            datetime!(2026-11-28 0:00 UTC),
        )];
        assert_eq!(
            effective_at(&history, datetime!(2026-11-30 0:00 UTC)).level,
            ConsentLevel::None
        );
        assert_eq!(
            effective_at(&history, datetime!(2026-12-01 0:00 UTC)).level,
            ConsentLevel::Full
        );
    }

    #[test]
    fn consent_dates_are_not_ahead_of_today_and_expiry_follows_giving() {
        let today = date!(2026 - 11 - 28);
        assert!(check_given(today, None, today).is_ok());
        assert!(check_given(date!(2026 - 01 - 15), Some(date!(2026 - 01 - 16)), today).is_ok());
        let field = |result: Result<(), InvalidValue>| result.unwrap_err().field;
        assert_eq!(
            field(check_given(date!(2026 - 11 - 29), None, today)),
            "given_on"
        );
        for expires in [date!(2026 - 01 - 15), date!(2026 - 01 - 01)] {
            assert_eq!(
                field(check_given(date!(2026 - 01 - 15), Some(expires), today)),
                "expires_on"
            );
        }
        assert!(check_withdrawn(today, today).is_ok());
        assert_eq!(
            field(check_withdrawn(date!(2026 - 11 - 29), today)),
            "withdrawn_on"
        );
    }

    #[test]
    fn any_declared_category_may_be_excluded_and_nothing_else() {
        let types = RecordTypes::from_toml(
            "categories = [\"housing\"]\n[types.\"programme.referral\"]\nholders = [\"programme\"]\n\
             [types.\"programme.referral\".fields]\ntenancy = { category = \"housing\" }\n",
            "test.toml",
        )
        .unwrap();
        let excluded = |raw: &[&str]| {
            excluded_categories(raw.iter().map(|c| (*c).to_owned()).collect(), &types)
        };
        assert_eq!(
            excluded(&["housing", "clinical", "housing"]).unwrap(),
            ["clinical".to_owned(), "housing".to_owned()].into()
        );
        assert!(excluded(&[]).unwrap().is_empty());
        let refused = excluded(&["clinical", "horoscope"]).unwrap_err();
        assert_eq!(refused.field, "excluded_categories");
        assert!(!refused.message.contains("horoscope"));
    }

    #[test]
    fn agency_coverage_defaults_to_every_party() {
        let mut effective = EffectiveConsent::none(None);
        let police = AgencyId::parse("hampshire-police").unwrap();
        assert!(effective.covers(&police));
        effective.agencies = Some([AgencyId::parse("iow-nhs").unwrap()].into_iter().collect());
        assert!(!effective.covers(&police));
    }

    #[test]
    fn review_falls_due_a_year_after_consent_or_at_expiry_whichever_is_sooner() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let recorded = datetime!(2026-01-10 09:00 UTC);
        let open_ended = [given(
            1,
            ConsentLevel::Full,
            date!(2026 - 01 - 10),
            None,
            recorded,
        )];
        assert_eq!(review_due(&open_ended, now), Some(date!(2027 - 01 - 10)));
        let expiring = [given(
            1,
            ConsentLevel::Crisis,
            date!(2026 - 01 - 10),
            Some(date!(2026 - 09 - 30)),
            recorded,
        )];
        assert_eq!(review_due(&expiring, now), Some(date!(2026 - 09 - 30)));
        let leap = [given(
            1,
            ConsentLevel::Full,
            date!(2024 - 02 - 29),
            None,
            recorded,
        )];
        assert_eq!(review_due(&leap, now), Some(date!(2025 - 02 - 28)));
    }

    #[test]
    fn nothing_is_due_for_review_without_consent_in_force() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let recorded = datetime!(2026-01-10 09:00 UTC);
        assert_eq!(review_due(&[], now), None);
        let withdrawn_after = [
            given(1, ConsentLevel::Full, date!(2026 - 01 - 10), None, recorded),
            withdrawn(2, date!(2026 - 02 - 01), datetime!(2026-02-01 09:00 UTC)),
        ];
        assert_eq!(review_due(&withdrawn_after, now), None);
        let expired = [given(
            1,
            ConsentLevel::Full,
            date!(2026 - 01 - 10),
            Some(date!(2026 - 03 - 01)),
            recorded,
        )];
        assert_eq!(review_due(&expired, now), None);
    }
}
