//! Information-sharing agreements: the document (TOML in configuration, the same fields
//! as JSON in the API), its validation, and the lifecycle that decides which version, if
//! any, is in force on a given day.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Iso8601, Date};

use super::{
    consent::ConsentLevel, purpose::Purpose, record_type::RecordTypes, AgencyId, AgencyKind,
};

/// An agreement document as operators write it (TOML) and the API accepts it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementDocument {
    pub id: String,
    pub version: i32,
    pub title: String,
    pub parties: Vec<String>,
    pub lawful_basis: Vec<String>,
    /// `YYYY-MM-DD`
    pub valid_from: String,
    /// `YYYY-MM-DD`
    pub valid_until: String,
    /// `YYYY-MM-DD`
    pub review_by: String,
    pub shares: Vec<ShareDocument>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareDocument {
    pub provider: String,
    pub recipients: Vec<String>,
    pub purposes: Vec<String>,
    pub record_types: Vec<String>,
    /// Category → minimum consent level at which it is released.
    pub categories: BTreeMap<String, String>,
    #[serde(default)]
    pub emergency_categories: Vec<String>,
}

/// A validated agreement version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    pub id: String,
    pub version: i32,
    pub title: String,
    pub parties: BTreeSet<AgencyId>,
    pub lawful_basis: Vec<String>,
    pub valid_from: Date,
    pub valid_until: Date,
    pub review_by: Date,
    pub shares: Vec<Share>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub provider: AgencyId,
    pub recipients: BTreeSet<AgencyId>,
    pub purposes: BTreeSet<Purpose>,
    pub record_types: BTreeSet<String>,
    pub categories: BTreeMap<String, ConsentLevel>,
    pub emergency_categories: BTreeSet<String>,
}

/// A validation failure naming the key (`shares[1].recipients`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct AgreementError {
    pub key: String,
    pub message: String,
}

fn fault(key: impl Into<String>, message: impl Into<String>) -> AgreementError {
    AgreementError {
        key: key.into(),
        message: message.into(),
    }
}

/// What validation checks the document against.
#[derive(Debug)]
pub struct Known<'a> {
    pub agencies: &'a BTreeMap<AgencyId, AgencyKind>,
    pub record_types: &'a RecordTypes,
}

fn date(key: &str, raw: &str) -> Result<Date, AgreementError> {
    Date::parse(raw, &Iso8601::DATE).map_err(|_| fault(key, "must be a date, YYYY-MM-DD"))
}

fn agreement_id_ok(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl AgreementDocument {
    /// Every rule of FORMATS.md: parties known, providers and recipients parties, record
    /// types known and holdable by the provider's kind, purposes and categories known,
    /// levels valid, `none` only with a lawful basis, emergency categories among the
    /// shared ones, `valid_from <= valid_until`.
    pub fn validate(&self, known: &Known<'_>) -> Result<Agreement, AgreementError> {
        if !agreement_id_ok(&self.id) {
            return Err(fault(
                "id",
                "must be 3 to 64 characters of a-z, 0-9 and '-'",
            ));
        }
        if self.version < 1 {
            return Err(fault("version", "must be 1 or more"));
        }
        if self.title.trim().is_empty() {
            return Err(fault("title", "must not be empty"));
        }
        let mut parties = BTreeSet::new();
        for party in &self.parties {
            let agency = AgencyId::parse(party)
                .ok()
                .filter(|a| known.agencies.contains_key(a))
                .ok_or_else(|| fault("parties", format!("{party} is not a registered agency")))?;
            parties.insert(agency);
        }
        if parties.len() < 2 {
            return Err(fault("parties", "an agreement needs at least two parties"));
        }
        let valid_from = date("valid_from", &self.valid_from)?;
        let valid_until = date("valid_until", &self.valid_until)?;
        let review_by = date("review_by", &self.review_by)?;
        if valid_from > valid_until {
            return Err(fault("valid_until", "must not be before valid_from"));
        }
        if self.shares.is_empty() {
            return Err(fault("shares", "an agreement shares something"));
        }
        let shares = self
            .shares
            .iter()
            .enumerate()
            .map(|(index, share)| {
                share.validate(index, &parties, !self.lawful_basis.is_empty(), known)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Agreement {
            id: self.id.clone(),
            version: self.version,
            title: self.title.trim().to_owned(),
            parties,
            lawful_basis: self.lawful_basis.clone(),
            valid_from,
            valid_until,
            review_by,
            shares,
        })
    }
}

impl ShareDocument {
    fn validate(
        &self,
        index: usize,
        parties: &BTreeSet<AgencyId>,
        has_lawful_basis: bool,
        known: &Known<'_>,
    ) -> Result<Share, AgreementError> {
        let key = |name: &str| format!("shares[{index}].{name}");
        let party = |raw: &str, name: &str| {
            AgencyId::parse(raw)
                .ok()
                .filter(|a| parties.contains(a))
                .ok_or_else(|| fault(key(name), format!("{raw} is not a party")))
        };
        let provider = party(&self.provider, "provider")?;
        let provider_kind = known
            .agencies
            .get(&provider)
            .copied()
            .ok_or_else(|| fault(key("provider"), "unknown agency"))?;
        let recipients = self
            .recipients
            .iter()
            .map(|r| party(r, "recipients"))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if recipients.is_empty() {
            return Err(fault(key("recipients"), "must name at least one recipient"));
        }
        let purposes = self
            .purposes
            .iter()
            .map(|p| {
                p.parse::<Purpose>()
                    .map_err(|_| fault(key("purposes"), format!("unknown purpose {p:?}")))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if purposes.is_empty() {
            return Err(fault(key("purposes"), "must name at least one purpose"));
        }
        let mut record_types = BTreeSet::new();
        for name in &self.record_types {
            let record_type = known.record_types.get(name).ok_or_else(|| {
                fault(key("record_types"), format!("unknown record type {name:?}"))
            })?;
            if !record_type.holders.contains(&provider_kind) {
                return Err(fault(
                    key("record_types"),
                    format!(
                        "{name} cannot be held by {} (a {provider_kind} agency)",
                        self.provider
                    ),
                ));
            }
            record_types.insert(name.clone());
        }
        if record_types.is_empty() {
            return Err(fault(
                key("record_types"),
                "must name at least one record type",
            ));
        }
        let mut categories = BTreeMap::new();
        for (category, level) in &self.categories {
            let category_key = key(&format!("categories.{category}"));
            if !known.record_types.has_category(category) {
                return Err(fault(category_key, "unknown category"));
            }
            let level: ConsentLevel = level.parse().map_err(|_| {
                fault(
                    category_key.clone(),
                    format!("unknown consent level {level:?}"),
                )
            })?;
            if level == ConsentLevel::None && !has_lawful_basis {
                return Err(fault(
                    category_key,
                    "level none (no consent) needs a lawful_basis",
                ));
            }
            categories.insert(category.clone(), level);
        }
        let mut emergency_categories = BTreeSet::new();
        for category in &self.emergency_categories {
            if !categories.contains_key(category) {
                return Err(fault(
                    key("emergency_categories"),
                    format!("{category} must also appear in categories"),
                ));
            }
            emergency_categories.insert(category.clone());
        }
        Ok(Share {
            provider,
            recipients,
            purposes,
            record_types,
            categories,
            emergency_categories,
        })
    }
}

/// What has happened to an agreement, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Every party's IG lead approved this version (or an admin imported it).
    Approved(i32),
    Suspended,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Draft,
    Active,
    Suspended,
    Terminated,
    Expired,
}

/// The agreement's status on `today` and the version in force, if any. The newest
/// approved version supersedes older ones; suspension lasts until a version is approved
/// again; termination is final; outside its dates an approved version is not in force.
pub fn status_on<'a>(
    versions: &'a [Agreement],
    events: &[Lifecycle],
    today: Date,
) -> (AgreementStatus, Option<&'a Agreement>) {
    let mut approved: Option<i32> = None;
    let mut suspended = false;
    let mut terminated = false;
    for event in events {
        match event {
            // Only a newer version supersedes (and so ends a suspension): approving an old
            // draft must not bring a suspended agreement back into force.
            Lifecycle::Approved(version)
                if !terminated && approved.is_none_or(|v| *version > v) =>
            {
                approved = Some(*version);
                suspended = false;
            }
            Lifecycle::Approved(_) => {}
            Lifecycle::Suspended => suspended = true,
            Lifecycle::Terminated => terminated = true,
        }
    }
    if terminated {
        return (AgreementStatus::Terminated, None);
    }
    let Some(current) = approved.and_then(|v| versions.iter().find(|a| a.version == v)) else {
        return (AgreementStatus::Draft, None);
    };
    if suspended {
        return (AgreementStatus::Suspended, None);
    }
    if today > current.valid_until {
        return (AgreementStatus::Expired, None);
    }
    if today < current.valid_from {
        // Approved but not yet started: nothing is shared under it yet.
        return (AgreementStatus::Active, None);
    }
    (AgreementStatus::Active, Some(current))
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    pub(crate) const EXAMPLE: &str = include_str!("../../config/agreements/isa-iow-recovery.toml");

    pub(crate) fn known_agencies() -> BTreeMap<AgencyId, AgencyKind> {
        [
            ("hampshire-police", AgencyKind::Police),
            ("iow-nhs", AgencyKind::Health),
            ("scas", AgencyKind::Ambulance),
            ("iow-recovery", AgencyKind::Programme),
        ]
        .into_iter()
        .map(|(id, kind)| (AgencyId::parse(id).unwrap(), kind))
        .collect()
    }

    pub(crate) fn record_types() -> RecordTypes {
        RecordTypes::from_toml(
            include_str!("../../config/record-types.toml"),
            "record-types.toml",
        )
        .unwrap()
    }

    fn document() -> AgreementDocument {
        toml::from_str(EXAMPLE).unwrap()
    }

    fn validate(document: &AgreementDocument) -> Result<Agreement, AgreementError> {
        let (agencies, types) = (known_agencies(), record_types());
        document.validate(&Known {
            agencies: &agencies,
            record_types: &types,
        })
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let agreement = validate(&document()).unwrap();
        assert_eq!(agreement.parties.len(), 4);
        assert!(!agreement.lawful_basis.is_empty());
    }

    #[test]
    fn violations_name_the_share_and_key() {
        type Mutation = fn(&mut AgreementDocument);
        let cases: Vec<(Mutation, &str)> = vec![
            (
                |d| d.shares[0].provider = "scas-north".into(),
                "shares[0].provider",
            ),
            (
                |d| d.shares[0].recipients.push("thames-valley".into()),
                "shares[0].recipients",
            ),
            (
                |d| d.shares[0].purposes.push("curiosity".into()),
                "shares[0].purposes",
            ),
            (
                |d| d.shares[0].record_types.push("police.incident".into()),
                "shares[0].record_types",
            ),
            (
                |d| d.shares[0].record_types.push("health.dreams".into()),
                "shares[0].record_types",
            ),
            (
                |d| {
                    d.shares[0]
                        .categories
                        .insert("horoscope".into(), "full".into());
                },
                "shares[0].categories.horoscope",
            ),
            (
                |d| {
                    d.shares[0]
                        .categories
                        .insert("clinical".into(), "most".into());
                },
                "shares[0].categories.clinical",
            ),
            (
                |d| d.shares[0].emergency_categories.push("notes".into()),
                "shares[0].emergency_categories",
            ),
            (|d| d.valid_until = "2025-01-01".into(), "valid_until"),
            (|d| d.parties.push("unknown-agency".into()), "parties"),
        ];
        for (mutate, key) in cases {
            let mut document = document();
            mutate(&mut document);
            let error = validate(&document).unwrap_err();
            assert_eq!(error.key, key, "{error}");
        }
    }

    #[test]
    fn level_none_needs_a_lawful_basis() {
        let mut document = document();
        document.shares[0]
            .categories
            .insert("service_usage".into(), "none".into());
        document.shares[0].record_types.retain(|_| true);
        assert!(validate(&document).is_ok());
        document.lawful_basis.clear();
        let error = validate(&document).unwrap_err();
        assert!(error.key.ends_with("categories.service_usage"), "{error}");
    }

    #[test]
    fn the_same_document_reads_as_json() {
        let json = serde_json::to_string(&document()).unwrap();
        let from_json: AgreementDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(
            validate(&from_json).unwrap(),
            validate(&document()).unwrap()
        );
    }

    fn version(v: i32) -> Agreement {
        let mut agreement = validate(&document()).unwrap();
        agreement.version = v;
        agreement
    }

    #[test]
    fn lifecycle_decides_what_is_in_force() {
        use AgreementStatus as S;
        use Lifecycle as L;
        let versions = [version(1), version(2)];
        let day = date!(2026 - 06 - 01);
        let cases: Vec<(Vec<Lifecycle>, Date, AgreementStatus, Option<i32>)> = vec![
            (vec![], day, S::Draft, None),
            (vec![L::Approved(1)], day, S::Active, Some(1)),
            (
                vec![L::Approved(1), L::Approved(2)],
                day,
                S::Active,
                Some(2),
            ),
            (
                vec![L::Approved(2), L::Approved(1)],
                day,
                S::Active,
                Some(2),
            ),
            (vec![L::Approved(1), L::Suspended], day, S::Suspended, None),
            (
                vec![L::Approved(1), L::Suspended, L::Approved(2)],
                day,
                S::Active,
                Some(2),
            ),
            (
                vec![L::Approved(1), L::Terminated],
                day,
                S::Terminated,
                None,
            ),
            (
                vec![L::Approved(1), L::Terminated, L::Approved(2)],
                day,
                S::Terminated,
                None,
            ),
            (
                vec![L::Approved(1)],
                date!(2028 - 01 - 01),
                S::Expired,
                None,
            ),
            (vec![L::Approved(1)], date!(2025 - 12 - 31), S::Active, None),
        ];
        for (events, today, status, in_force) in cases {
            let (got_status, got) = status_on(&versions, &events, today);
            assert_eq!(
                (got_status, got.map(|a| a.version)),
                (status, in_force),
                "{events:?} on {today}"
            );
        }
    }
}
