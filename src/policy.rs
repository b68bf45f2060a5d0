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
//! Several agreements combine by union. [`decide`] gives what a read releases; [`explain`]
//! the same decision with the rule that decided each field, for an auditor's replay.

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

/// The rule that decided one field, released or withheld: what an auditor's replay of a
/// decision shows (`app::explain`), and what [`decide`] reduces to a
/// [`WithheldReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ground<'a> {
    /// Released: a share lists the category at `required`, and the consent is at least
    /// that, does not exclude the category and covers the recipient.
    Consent {
        agreement: &'a Agreement,
        required: ConsentLevel,
    },
    /// Released without consent: a share lists the category at `none` (the agreement's
    /// lawful basis is not consent).
    NoConsentNeeded { agreement: &'a Agreement },
    /// Released by break-glass: an emergency category of a share.
    Emergency { agreement: &'a Agreement },
    /// Withheld: no share that applies lists the category.
    NotShared,
    /// Withheld: the consent is below the lowest level a share lists the category at.
    ConsentLevel { required: ConsentLevel },
    /// Withheld: the person excluded the category.
    ExcludedCategory,
    /// Withheld: the consent does not cover the recipient agency.
    AgencyScope,
}

impl<'a> Ground<'a> {
    /// The agreement whose share released the field, or why it was withheld as a response
    /// names it.
    pub fn outcome(&self) -> Result<&'a Agreement, WithheldReason> {
        match *self {
            Self::Consent { agreement, .. }
            | Self::NoConsentNeeded { agreement }
            | Self::Emergency { agreement } => Ok(agreement),
            Self::NotShared => Err(WithheldReason::Agreement),
            Self::ConsentLevel { .. } => Err(WithheldReason::Consent),
            Self::ExcludedCategory | Self::AgencyScope => Err(WithheldReason::ConsentExcluded),
        }
    }

    /// The rule's name, as a replay reports it.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Consent { .. } => "agreement_share",
            Self::NoConsentNeeded { .. } => "agreement_share_without_consent",
            Self::Emergency { .. } => "emergency_category",
            Self::NotShared => "not_shared",
            Self::ConsentLevel { .. } => "consent_level",
            Self::ExcludedCategory => "excluded_category",
            Self::AgencyScope => "agency_scope",
        }
    }
}

/// One field of a record type and the rule that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldGround<'a> {
    pub field: &'a str,
    pub ground: Ground<'a>,
}

/// [`decide`], with the rule for every field: what an auditor's replay shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation<'a> {
    /// The holder reading its own record: every field.
    Whole,
    /// No share covers the type: the record is left out.
    Omitted,
    /// Every field of the type, in name order.
    Fields(Vec<FieldGround<'a>>),
}

/// What the agreements say about a record of one type from one holder, before any field.
enum Coverage<'a> {
    /// The holder reading its own record.
    Own,
    /// No share covers the type for this recipient and purpose.
    NotShared,
    /// The shares that apply, with their agreements, in the order the agreements are given.
    Shares(Vec<(&'a Agreement, &'a Share)>),
}

fn coverage<'a>(
    request: &AccessRequest<'a>,
    holder: &AgencyId,
    record_type: &RecordType,
) -> Coverage<'a> {
    if holder == request.recipient {
        return Coverage::Own;
    }
    let (recipient, purpose) = (request.recipient, request.purpose);
    let applicable: Vec<_> = request
        .agreements
        .iter()
        .flat_map(|agreement| agreement.shares.iter().map(move |share| (agreement, share)))
        .filter(|(_, share)| {
            share.provider == *holder
                && share.recipients.contains(recipient)
                && share.purposes.contains(&purpose)
                && share.record_types.contains(&record_type.name)
        })
        .collect();
    if applicable.is_empty() {
        Coverage::NotShared
    } else {
        Coverage::Shares(applicable)
    }
}

/// The rule for one category under the shares that apply: the first share that releases it
/// decides; if none does, why not.
fn ground<'a>(
    request: &AccessRequest<'_>,
    applicable: &[(&'a Agreement, &'a Share)],
    category: &str,
) -> Ground<'a> {
    let consent = request.consent;
    let excluded = consent.excluded_categories.contains(category);
    let covered = consent.covers(request.recipient);
    let mut lowest: Option<ConsentLevel> = None;
    for &(agreement, share) in applicable {
        let Some(&required) = share.categories.get(category) else {
            continue;
        };
        lowest = Some(lowest.map_or(required, |l| l.min(required)));
        if required == ConsentLevel::None {
            return Ground::NoConsentNeeded { agreement };
        }
        if consent.level >= required && !excluded && covered {
            return Ground::Consent {
                agreement,
                required,
            };
        }
        if request.break_glass && share.emergency_categories.contains(category) {
            return Ground::Emergency { agreement };
        }
    }
    match lowest {
        None => Ground::NotShared,
        Some(_) if excluded => Ground::ExcludedCategory,
        Some(_) if !covered => Ground::AgencyScope,
        Some(required) => Ground::ConsentLevel { required },
    }
}

/// The fields of `record_type`, held by `holder`, that `request` may see.
pub fn decide(
    request: &AccessRequest<'_>,
    holder: &AgencyId,
    record_type: &RecordType,
) -> TypeDecision {
    let applicable = match coverage(request, holder, record_type) {
        Coverage::Own => return TypeDecision::Whole,
        Coverage::NotShared => return TypeDecision::Omitted,
        Coverage::Shares(applicable) => applicable,
    };
    let mut released = BTreeSet::new();
    let mut withheld = BTreeMap::new();
    let mut releasing: BTreeSet<AgreementRef> = BTreeSet::new();
    for (field, spec) in &record_type.fields {
        match ground(request, &applicable, &spec.category).outcome() {
            Ok(agreement) => {
                releasing.insert(AgreementRef::new(agreement.id.clone(), agreement.version));
                released.insert(field.clone());
            }
            Err(reason) => {
                withheld.insert(field.clone(), reason);
            }
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

/// [`decide`] with the rule that decided each field.
pub fn explain<'a>(
    request: &AccessRequest<'a>,
    holder: &AgencyId,
    record_type: &'a RecordType,
) -> Explanation<'a> {
    let applicable = match coverage(request, holder, record_type) {
        Coverage::Own => return Explanation::Whole,
        Coverage::NotShared => return Explanation::Omitted,
        Coverage::Shares(applicable) => applicable,
    };
    Explanation::Fields(
        record_type
            .fields
            .iter()
            .map(|(field, spec)| FieldGround {
                field,
                ground: ground(request, &applicable, &spec.category),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
