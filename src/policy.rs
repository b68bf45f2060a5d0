//! The decision core, pure: given who asks (agency and role), why (purpose, break-glass),
//! the subject's effective consent and the agreements in force, what may each record type
//! release? No I/O; every rule of how consent and agreements combine is here (explained for
//! readers in `docs/ig-guide.md`, "What a practitioner sees").
//!
//! For a recipient R reading a record of type T held by provider P for purpose U, a field
//! of category C is released when some agreement in force has a share (P → R, U, T) with
//! `categories[C] = L` and: the effective consent is at least L, does not exclude C and
//! covers R; or L is `none`; or the request is break-glass and C is an emergency category
//! of that share. Otherwise it is withheld as `agreement` (no such share lists C),
//! `consent_excluded` (excluded, or R not covered) or `consent` (level too low). A type
//! with no such share at all is omitted; a holder reading its own record sees it whole.
//! Several agreements combine by union.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{
    agreement::{Agreement, AgreementRef, Share},
    consent::{ConsentLevel, EffectiveConsent},
    purpose::Purpose,
    record_type::RecordType,
    AgencyId, Role,
};

/// Who asks, why, and what stands: everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    pub recipient: &'a AgencyId,
    pub roles: &'a BTreeSet<Role>,
    pub purpose: Purpose,
    pub break_glass: bool,
    pub consent: &'a EffectiveConsent,
    /// Agreements in force at this instant (already filtered by status and dates).
    pub agreements: &'a [Agreement],
}

/// Why a whole request is refused (each is a rule of `app::error::Rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Only practitioners read records.
    Role,
    /// Not a record-reading purpose, or break-glass for anything but crisis response.
    Purpose,
    /// No agreement in force lets the recipient receive anything for this purpose.
    NoAgreement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WithheldReason {
    /// The consent level is too low.
    Consent,
    /// The subject excluded the category, or the consent does not cover the recipient.
    ConsentExcluded,
    /// No share releases the category.
    Agreement,
}

impl WithheldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::ConsentExcluded => "consent_excluded",
            Self::Agreement => "agreement",
        }
    }
}

/// What one record type (from one holder) releases to this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDecision {
    /// The holder reading its own record: every field.
    Whole,
    /// No agreement in force shares the type with the recipient for the purpose: the
    /// record is left out of the response (its existence is itself sensitive).
    Omitted,
    Fields {
        /// Released field names.
        released: BTreeSet<String>,
        /// Every other field of the type, with its reason.
        withheld: BTreeMap<String, WithheldReason>,
        /// `(agreement id, version)` of every agreement with a share that applies.
        agreements: BTreeSet<AgreementRef>,
        /// The first agreement (by id) whose share released a field, for the response.
        released_by: Option<AgreementRef>,
    },
}

impl TypeDecision {
    /// `(agreement id, version)` of every agreement with a share that applies; none for
    /// the holder's own record or an omitted one.
    pub fn agreements(&self) -> impl Iterator<Item = &AgreementRef> {
        let applying = match self {
            Self::Fields { agreements, .. } => Some(agreements.iter()),
            Self::Whole | Self::Omitted => None,
        };
        applying.into_iter().flatten()
    }

    /// The agreement a released record is shown as shared under: the first that released
    /// a field, else the first that applies; none for the holder's own record.
    pub fn shared_under(&self) -> Option<&AgreementRef> {
        match self {
            Self::Fields {
                released_by: Some(agreement),
                ..
            } => Some(agreement),
            _ => self.agreements().next(),
        }
    }
}

/// What can be refused before anything about the subject is read: who asks and why.
pub fn admit_caller(
    roles: &BTreeSet<Role>,
    purpose: Purpose,
    break_glass: bool,
) -> Result<(), Refusal> {
    if !roles.contains(&Role::Practitioner) {
        return Err(Refusal::Role);
    }
    if !purpose.reads_records() || (break_glass && purpose != Purpose::CrisisResponse) {
        return Err(Refusal::Purpose);
    }
    Ok(())
}

/// Whether the request may go ahead at all.
pub fn admit(request: &AccessRequest<'_>) -> Result<(), Refusal> {
    admit_caller(request.roles, request.purpose, request.break_glass)?;
    let receives_something = request.agreements.iter().any(|agreement| {
        agreement.shares.iter().any(|share| {
            share.recipients.contains(request.recipient)
                && share.purposes.contains(&request.purpose)
        })
    });
    if receives_something {
        Ok(())
    } else {
        Err(Refusal::NoAgreement)
    }
}

/// The fields of `record_type`, held by `holder`, that `request` may see.
pub fn decide(
    request: &AccessRequest<'_>,
    holder: &AgencyId,
    record_type: &RecordType,
) -> TypeDecision {
    if holder == request.recipient {
        return TypeDecision::Whole;
    }
    let applicable: Vec<(&Agreement, &Share)> = request
        .agreements
        .iter()
        .flat_map(|agreement| agreement.shares.iter().map(move |share| (agreement, share)))
        .filter(|(_, share)| {
            share.provider == *holder
                && share.recipients.contains(request.recipient)
                && share.purposes.contains(&request.purpose)
                && share.record_types.contains(&record_type.name)
        })
        .collect();
    if applicable.is_empty() {
        return TypeDecision::Omitted;
    }
    let consent = request.consent;
    let consent_refuses = |category: &str| {
        consent.excluded_categories.contains(category) || !consent.covers(request.recipient)
    };
    let mut released = BTreeSet::new();
    let mut withheld = BTreeMap::new();
    let mut releasing: BTreeSet<AgreementRef> = BTreeSet::new();
    for (field, spec) in &record_type.fields {
        let category = spec.category.as_str();
        let mut listed = false;
        let mut release = false;
        for (agreement, share) in &applicable {
            let Some(&level) = share.categories.get(category) else {
                continue;
            };
            listed = true;
            let by_consent = consent.level >= level && !consent_refuses(category);
            let statutory = level == ConsentLevel::None;
            let emergency = request.break_glass && share.emergency_categories.contains(category);
            if by_consent || statutory || emergency {
                release = true;
                releasing.insert(AgreementRef::new(agreement.id.clone(), agreement.version));
                break;
            }
        }
        if release {
            released.insert(field.clone());
        } else {
            let reason = if !listed {
                WithheldReason::Agreement
            } else if consent_refuses(category) {
                WithheldReason::ConsentExcluded
            } else {
                WithheldReason::Consent
            };
            withheld.insert(field.clone(), reason);
        }
    }
    TypeDecision::Fields {
        released,
        withheld,
        agreements: applicable
            .iter()
            .map(|(agreement, _)| AgreementRef::new(agreement.id.clone(), agreement.version))
            .collect(),
        released_by: releasing.into_iter().next(),
    }
}

#[cfg(test)]
mod tests;
