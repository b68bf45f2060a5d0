//! Information-sharing agreements: the document (TOML in configuration, the same fields
//! as JSON in the API), its validation, the lifecycle that decides which version, if any,
//! is in force on a given day, and the governance rule that decides who may draft, approve,
//! suspend or terminate one. Governance is one pure function, [`govern`], asked both for the
//! early answer and again under the agreement lock, so a rule gives one answer however the
//! race between them goes.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use serde::{Deserialize, Serialize};
use time::Date;

use super::{
    consent::ConsentLevel, purpose::Purpose, record_type::RecordTypes, AgencyId, AgencyKind, Role,
    Timestamp,
};

/// One version of one agreement, as audit entries name it: `id@version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgreementRef {
    pub id: String,
    pub version: i32,
}

impl AgreementRef {
    pub fn new(id: impl Into<String>, version: i32) -> Self {
        Self {
            id: id.into(),
            version,
        }
    }
}

impl fmt::Display for AgreementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

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
    super::timestamp::calendar_date(raw).ok_or_else(|| fault(key, "must be a date, YYYY-MM-DD"))
}

fn agreement_id_ok(id: &str) -> bool {
    (3..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl AgreementDocument {
    pub fn reference(&self) -> AgreementRef {
        AgreementRef::new(&self.id, self.version)
    }

    /// The parties as agency ids. A party that is not a well-formed id can only be in a
    /// document not yet validated, and governs nothing, so it is left out.
    pub fn party_ids(&self) -> BTreeSet<AgencyId> {
        self.parties
            .iter()
            .filter_map(|party| AgencyId::parse(party).ok())
            .collect()
    }

    /// Every rule an agreement document must meet (`docs/operations.md`, "Agreements"):
    /// parties known, providers and recipients parties, record
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

impl AgreementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
            Self::Expired => "expired",
        }
    }
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

impl Agreement {
    /// Whether this version is past its review date: a warning for operators, not a rule
    /// the gateway enforces.
    pub fn review_overdue(&self, today: Date) -> bool {
        self.review_by < today
    }
}

/// What was recorded about an agreement beside its versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The last approval a version needed arrived.
    Approved,
    /// An admin imported a version from a file (itself audited).
    Imported,
    Suspended,
    Terminated,
}

impl EventKind {
    pub const ALL: [Self; 4] = [
        Self::Approved,
        Self::Imported,
        Self::Suspended,
        Self::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Imported => "imported",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// One party's approval of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub agency: AgencyId,
    pub approved_by: String,
    pub approved_at: Timestamp,
}

/// One stored version with the approvals it has received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: i32,
    pub document: AgreementDocument,
    pub created_by: String,
    pub created_at: Timestamp,
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementEvent {
    pub kind: EventKind,
    pub version: Option<i32>,
    pub reason: Option<String>,
    pub recorded_by: String,
    pub recorded_at: Timestamp,
}

/// Everything stored about one agreement: its versions in order, their approvals, and its
/// events in order. Every status and governance answer is derived from this, afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementHistory {
    pub id: String,
    pub versions: Vec<VersionRecord>,
    pub events: Vec<AgreementEvent>,
}

impl AgreementHistory {
    /// An agreement nothing is stored about yet: what a first draft is governed against.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            versions: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn version(&self, version: i32) -> Option<&VersionRecord> {
        self.versions.iter().find(|v| v.version == version)
    }

    pub fn latest(&self) -> Option<&VersionRecord> {
        self.versions.last()
    }

    fn lifecycle(&self) -> Vec<Lifecycle> {
        self.events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::Approved | EventKind::Imported => event.version.map(Lifecycle::Approved),
                EventKind::Suspended => Some(Lifecycle::Suspended),
                EventKind::Terminated => Some(Lifecycle::Terminated),
            })
            .collect()
    }

    /// The status on `today` and the version in force, if any. A version that no longer
    /// validates against today's agencies and record types (one was removed) cannot be in
    /// force, so it is left out, and named so the caller can warn the operator.
    pub fn standing(&self, known: &Known<'_>, today: Date) -> Standing {
        let mut versions = Vec::new();
        let mut unusable = Vec::new();
        for record in &self.versions {
            match record.document.validate(known) {
                Ok(agreement) => versions.push(agreement),
                Err(_) => unusable.push(record.version),
            }
        }
        let (status, current) = status_on(&versions, &self.lifecycle(), today);
        Standing {
            status,
            in_force: current.cloned(),
            unusable,
        }
    }

    /// The newest version that every party approved (or that was imported).
    pub fn approved_version(&self) -> Option<i32> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Approved | EventKind::Imported))
            .filter_map(|e| e.version)
            .max()
    }

    pub fn terminated(&self) -> bool {
        self.events.iter().any(|e| e.kind == EventKind::Terminated)
    }

    /// The version a change of status applies to, as audit entries name it: the approved
    /// one, or the newest draft before any approval.
    pub fn current_reference(&self) -> Option<AgreementRef> {
        self.approved_version()
            .or_else(|| self.latest().map(|v| v.version))
            .map(|version| AgreementRef::new(&self.id, version))
    }

    /// Every agency named as a party in any version: who may read the agreement.
    pub fn parties(&self) -> BTreeSet<AgencyId> {
        self.versions
            .iter()
            .flat_map(|v| v.document.party_ids())
            .collect()
    }

    /// The parties that govern the agreement: those of its newest approved version, or of
    /// its first draft before any approval. Only they may draft a new version, suspend or
    /// terminate it; a party added by a later draft gains nothing until that draft is
    /// approved, by them and by the governing parties alike.
    pub fn governing_parties(&self) -> BTreeSet<AgencyId> {
        let version = self
            .approved_version()
            .or_else(|| self.versions.first().map(|v| v.version));
        version
            .and_then(|v| self.version(v))
            .map(|v| v.document.party_ids())
            .unwrap_or_default()
    }

    /// Who must approve `version` before it supersedes: every party to it and every party
    /// governing the agreement now, so no subset of parties can rewrite it.
    pub fn required_approvers(&self, version: i32) -> Option<BTreeSet<AgencyId>> {
        let mut required = self.version(version)?.document.party_ids();
        required.extend(self.governing_parties());
        Some(required)
    }

    /// Whether every required party has approved `version` since the latest suspension: a
    /// suspension is lifted by a fresh decision, not by earlier ones.
    pub fn approval_complete(&self, version: i32) -> bool {
        let suspended_at = self
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Suspended)
            .map(|e| e.recorded_at)
            .max()
            .unwrap_or(Timestamp::MIN);
        let (Some(required), Some(record)) =
            (self.required_approvers(version), self.version(version))
        else {
            return false;
        };
        let approved: BTreeSet<&AgencyId> = record
            .approvals
            .iter()
            .filter(|a| a.approved_at > suspended_at)
            .map(|a| &a.agency)
            .collect();
        required.iter().all(|agency| approved.contains(agency))
    }

    /// Admins and IG auditors see every agreement; anyone else those their agency is a
    /// party to in some version.
    pub fn visible_to(&self, who: &Requester) -> bool {
        who.holds(Role::Admin)
            || who.holds(Role::IgAuditor)
            || who
                .agency
                .as_ref()
                .is_some_and(|a| self.parties().contains(a))
    }
}

/// An agreement's status on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub status: AgreementStatus,
    pub in_force: Option<Agreement>,
    /// Stored versions that no longer validate, so can never be in force.
    pub unusable: Vec<i32>,
}

/// Who asks to read or govern an agreement, as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// None for an operator at the gateway's own command line.
    pub agency: Option<AgencyId>,
    pub roles: BTreeSet<Role>,
}

impl Requester {
    fn holds(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    fn of_any(&self, parties: &BTreeSet<AgencyId>) -> Option<&AgencyId> {
        self.agency.as_ref().filter(|a| parties.contains(a))
    }
}

/// A change of status that applies to every version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Suspend,
    Terminate,
}

impl StatusChange {
    pub fn event(self) -> EventKind {
        match self {
            Self::Suspend => EventKind::Suspended,
            Self::Terminate => EventKind::Terminated,
        }
    }

    /// The status the agreement has once the change is made.
    pub fn status(self) -> AgreementStatus {
        match self {
            Self::Suspend => AgreementStatus::Suspended,
            Self::Terminate => AgreementStatus::Terminated,
        }
    }
}

/// What a requester asks to do to an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GovernanceAction<'a> {
    /// Store this document as a new version.
    Draft(&'a AgreementDocument),
    /// Approve this version for the requester's agency.
    Approve(i32),
    Change(StatusChange),
}

impl GovernanceAction<'_> {
    /// The roles that may ask at all; the rest of [`govern`] decides whether they may here.
    pub fn roles(&self) -> &'static [Role] {
        match self {
            Self::Draft(_) => &[Role::Admin, Role::IgLead],
            Self::Approve(_) => &[Role::IgLead],
            Self::Change(_) => &[Role::IgLead, Role::Admin],
        }
    }
}

/// Why [`govern`] refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GovernanceRefusal {
    /// The requester holds none of these roles.
    Role(&'static [Role]),
    /// An IG lead drafts only agreements their agency governs (or, for a new agreement,
    /// is a party to).
    NotDraftingParty,
    /// An IG lead approves only versions their agency must approve.
    NotApprovingParty,
    /// Only an IG lead of a governing party, or an admin, suspends or terminates.
    NotGoverningParty,
    UnknownVersion,
    Terminated,
    /// This version, or a newer one, is already approved: draft a new version instead.
    NewerVersionApproved,
    AlreadyApproved {
        agency: AgencyId,
        version: i32,
    },
}

/// Decides whether `who` may take `action` on the agreement as `history` records it. Asked
/// for the early answer and again under the agreement lock with the history as it is then,
/// so the same state always gives the same answer. Admins draft, suspend and terminate any
/// agreement but approve none: approval is each party's own decision.
pub fn govern(
    history: &AgreementHistory,
    who: &Requester,
    action: GovernanceAction<'_>,
) -> Result<(), GovernanceRefusal> {
    let roles = action.roles();
    if !roles.iter().any(|role| who.holds(*role)) {
        return Err(GovernanceRefusal::Role(roles));
    }
    let admin = who.holds(Role::Admin);
    match action {
        GovernanceAction::Draft(document) => {
            // A new version of an existing agreement is drafted only by its governing
            // parties; a new agreement by one of its own parties.
            let governing = if history.versions.is_empty() {
                document.party_ids()
            } else {
                history.governing_parties()
            };
            if admin || who.of_any(&governing).is_some() {
                Ok(())
            } else {
                Err(GovernanceRefusal::NotDraftingParty)
            }
        }
        GovernanceAction::Approve(version) => {
            let required = history
                .required_approvers(version)
                .ok_or(GovernanceRefusal::UnknownVersion)?;
            if history.terminated() {
                return Err(GovernanceRefusal::Terminated);
            }
            if history
                .approved_version()
                .is_some_and(|approved| version <= approved)
            {
                return Err(GovernanceRefusal::NewerVersionApproved);
            }
            let agency = who
                .of_any(&required)
                .ok_or(GovernanceRefusal::NotApprovingParty)?;
            let already = history
                .version(version)
                .is_some_and(|v| v.approvals.iter().any(|a| a.agency == *agency));
            if already {
                return Err(GovernanceRefusal::AlreadyApproved {
                    agency: agency.clone(),
                    version,
                });
            }
            Ok(())
        }
        GovernanceAction::Change(_) => {
            if !admin && who.of_any(&history.governing_parties()).is_none() {
                return Err(GovernanceRefusal::NotGoverningParty);
            }
            if history.terminated() {
                return Err(GovernanceRefusal::Terminated);
            }
            Ok(())
        }
    }
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

    #[test]
    fn a_reference_reads_id_at_version() {
        assert_eq!(
            AgreementRef::new("isa-iow-recovery", 2).to_string(),
            "isa-iow-recovery@2"
        );
        assert_eq!(
            document().reference(),
            AgreementRef::new("isa-iow-recovery", 1)
        );
    }

    mod governance {
        use super::*;
        use GovernanceRefusal as No;

        type Answer = Result<(), No>;

        const P: &str = "hampshire-police";
        const N: &str = "iow-nhs";
        const S: &str = "scas";
        const R: &str = "iow-recovery";
        const ALL: [&str; 4] = [P, N, S, R];

        fn agency(id: &str) -> AgencyId {
            AgencyId::parse(id).unwrap()
        }

        /// The example document as `version` with `parties`; governance reads only these.
        fn doc(version: i32, parties: &[&str]) -> AgreementDocument {
            let mut document = document();
            document.version = version;
            document.parties = parties.iter().map(|p| (*p).to_owned()).collect();
            document
        }

        fn at(micros: i64) -> Timestamp {
            Timestamp::from_micros(micros)
        }

        /// A small history builder: versions, approvals and events at given instants.
        #[derive(Clone)]
        struct Built(AgreementHistory);

        impl Built {
            fn new() -> Self {
                Self(AgreementHistory::new("isa"))
            }
            fn version(mut self, version: i32, parties: &[&str]) -> Self {
                self.0.versions.push(VersionRecord {
                    version,
                    document: doc(version, parties),
                    created_by: "someone".into(),
                    created_at: at(0),
                    approvals: Vec::new(),
                });
                self
            }
            fn approval(mut self, version: i32, by: &str, micros: i64) -> Self {
                let record = self
                    .0
                    .versions
                    .iter_mut()
                    .find(|v| v.version == version)
                    .unwrap();
                record.approvals.push(Approval {
                    agency: agency(by),
                    approved_by: format!("{by}-ig"),
                    approved_at: at(micros),
                });
                self
            }
            fn event(mut self, kind: EventKind, version: Option<i32>, micros: i64) -> Self {
                self.0.events.push(AgreementEvent {
                    kind,
                    version,
                    reason: None,
                    recorded_by: "someone".into(),
                    recorded_at: at(micros),
                });
                self
            }
            /// Every party of `version` approves it at `micros`, and it is approved.
            fn approved(mut self, version: i32, micros: i64) -> Self {
                let parties = self.0.required_approvers(version).unwrap();
                for party in parties {
                    self = self.approval(version, party.as_str(), micros);
                }
                self.event(EventKind::Approved, Some(version), micros)
            }
        }

        fn who(agency_id: Option<&str>, roles: &[Role]) -> Requester {
            Requester {
                agency: agency_id.map(agency),
                roles: roles.iter().copied().collect(),
            }
        }

        fn lead(agency_id: &str) -> Requester {
            who(Some(agency_id), &[Role::IgLead])
        }

        /// v1 with all four parties, drafted only.
        fn drafted() -> Built {
            Built::new().version(1, &ALL)
        }
        /// v1 approved by all four.
        fn active() -> Built {
            drafted().approved(1, 10)
        }
        /// v1 in force; v2 narrowed to the programme and the ambulance service, drafted.
        fn narrowing() -> Built {
            active().version(2, &[R, S])
        }
        /// v2 (programme and ambulance only) in force; v3 (the same two) drafted. The
        /// police and the NHS govern nothing any more.
        fn narrowed() -> Built {
            narrowing().approved(2, 20).version(3, &[R, S])
        }
        fn suspended() -> Built {
            active().event(EventKind::Suspended, None, 30)
        }
        fn terminated() -> Built {
            narrowing().event(EventKind::Terminated, None, 30)
        }

        const IG: &[Role] = &[Role::IgLead];
        const ADMIN_OR_IG: &[Role] = &[Role::Admin, Role::IgLead];
        const IG_OR_ADMIN: &[Role] = &[Role::IgLead, Role::Admin];
        const SUSPEND: GovernanceAction<'static> = GovernanceAction::Change(StatusChange::Suspend);
        const TERMINATE: GovernanceAction<'static> =
            GovernanceAction::Change(StatusChange::Terminate);

        #[test]
        #[rustfmt::skip]
        fn who_may_draft() {
            let everyone = doc(1, &ALL);
            let narrow = doc(1, &[R, S]);
            let next = doc(2, &[R, S]);
            let widened = doc(4, &[P, R, S]);
            let cases: Vec<(&str, Built, Requester, &AgreementDocument, Answer)> = vec![
                ("a party drafts a new agreement", Built::new(), lead(P), &everyone, Ok(())),
                ("a non-party cannot", Built::new(), lead(P), &narrow, Err(No::NotDraftingParty)),
                ("an admin drafts any", Built::new(), who(None, &[Role::Admin]), &narrow, Ok(())),
                ("a practitioner cannot", Built::new(), who(Some(P), &[Role::Practitioner]), &everyone, Err(No::Role(ADMIN_OR_IG))),
                ("an auditor cannot", Built::new(), who(Some(P), &[Role::IgAuditor]), &everyone, Err(No::Role(ADMIN_OR_IG))),
                ("the first draft's parties govern before approval", drafted(), lead(P), &next, Ok(())),
                ("a governing party drafts the next version", active(), lead(P), &next, Ok(())),
                ("a party no longer governing cannot", narrowed(), lead(P), &widened, Err(No::NotDraftingParty)),
                ("even when the draft names it", narrowed(), lead(N), &widened, Err(No::NotDraftingParty)),
                ("the governing parties can", narrowed(), lead(R), &widened, Ok(())),
                ("an admin can", narrowed(), who(Some(P), &[Role::Admin]), &widened, Ok(())),
                ("a terminated agreement may still be drafted", terminated(), lead(P), &widened, Ok(())),
            ];
            for (name, history, requester, document, expected) in cases {
                assert_eq!(govern(&history.0, &requester, GovernanceAction::Draft(document)), expected, "{name}");
            }
        }

        #[test]
        #[rustfmt::skip]
        fn who_may_approve() {
            let cases: Vec<(&str, Built, Requester, i32, Answer)> = vec![
                ("a party approves a draft", drafted(), lead(P), 1, Ok(())),
                ("an admin approves nothing", drafted(), who(Some(P), &[Role::Admin]), 1, Err(No::Role(IG))),
                ("nor does a practitioner", drafted(), who(Some(P), &[Role::Practitioner]), 1, Err(No::Role(IG))),
                ("an operator is no party", drafted(), who(None, &Role::ALL), 1, Err(No::NotApprovingParty)),
                ("an unknown version", drafted(), lead(P), 9, Err(No::UnknownVersion)),
                ("twice by one agency", drafted().approval(1, P, 5), lead(P), 1, Err(No::AlreadyApproved { agency: agency(P), version: 1 })),
                ("another party after one approved", drafted().approval(1, P, 5), lead(N), 1, Ok(())),
                ("the approved version again", active(), lead(P), 1, Err(No::NewerVersionApproved)),
                ("a governing party approves a version it is not party to", narrowing(), lead(P), 2, Ok(())),
                ("a party to the version approves it", narrowing(), lead(S), 2, Ok(())),
                ("a party no longer governing is no approver", narrowed(), lead(P), 3, Err(No::NotApprovingParty)),
                ("the governing parties are", narrowed(), lead(R), 3, Ok(())),
                ("an older version than the approved one", narrowed(), lead(R), 1, Err(No::NewerVersionApproved)),
                ("re-approving after a suspension does not lift it", suspended(), lead(P), 1, Err(No::NewerVersionApproved)),
                ("nothing once terminated", terminated(), lead(S), 2, Err(No::Terminated)),
            ];
            for (name, history, requester, version, expected) in cases {
                assert_eq!(govern(&history.0, &requester, GovernanceAction::Approve(version)), expected, "{name}");
            }
        }

        #[test]
        #[rustfmt::skip]
        fn who_may_suspend_or_terminate() {
            for action in [SUSPEND, TERMINATE] {
                let cases: Vec<(&str, Built, Requester, Answer)> = vec![
                    ("a governing party", active(), lead(P), Ok(())),
                    ("a first draft's party", drafted(), lead(S), Ok(())),
                    ("an admin of any agency", narrowed(), who(Some(P), &[Role::Admin]), Ok(())),
                    ("an operator", narrowed(), who(None, &Role::ALL), Ok(())),
                    ("a party no longer governing", narrowed(), lead(P), Err(No::NotGoverningParty)),
                    ("a practitioner of a party", active(), who(Some(P), &[Role::Practitioner]), Err(No::Role(IG_OR_ADMIN))),
                    ("a suspended agreement", suspended(), lead(P), Ok(())),
                    ("a terminated one", terminated(), lead(P), Err(No::Terminated)),
                    ("a terminated one, by an admin", terminated(), who(None, &[Role::Admin]), Err(No::Terminated)),
                    ("the party rule answers first", narrowed().event(EventKind::Terminated, None, 30), lead(P), Err(No::NotGoverningParty)),
                ];
                for (name, history, requester, expected) in cases {
                    assert_eq!(govern(&history.0, &requester, action), expected, "{name}: {action:?}");
                }
            }
        }

        /// Every combination of roles (all 64 sets), agency, history and action: the answer
        /// is a role refusal exactly when no role fits, and otherwise allowed exactly when
        /// the oracle, the rule restated over plain sets, allows it.
        #[test]
        fn every_requester_history_and_action_against_an_oracle() {
            let histories = [
                Built::new(),
                drafted(),
                drafted().approval(1, P, 5),
                active(),
                narrowing(),
                narrowing().approval(2, S, 15),
                narrowed(),
                suspended(),
                terminated(),
            ];
            let (everyone, narrow) = (doc(4, &ALL), doc(4, &[R, S]));
            let actions = [
                GovernanceAction::Draft(&everyone),
                GovernanceAction::Draft(&narrow),
                GovernanceAction::Approve(1),
                GovernanceAction::Approve(2),
                GovernanceAction::Approve(3),
                SUSPEND,
                TERMINATE,
            ];
            let agencies = [None, Some(P), Some(N), Some(S), Some(R)];
            let mut checked = 0;
            for mask in 0..(1u32 << Role::ALL.len()) {
                let roles: Vec<Role> = Role::ALL
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, r)| *r)
                    .collect();
                for agency_id in agencies {
                    let requester = who(agency_id, &roles);
                    for history in &histories {
                        for action in actions {
                            let got = govern(&history.0, &requester, action);
                            let fits = action.roles().iter().any(|r| roles.contains(r));
                            if !fits {
                                assert_eq!(got, Err(No::Role(action.roles())));
                                continue;
                            }
                            let expected =
                                oracle(&history.0, agency_id, roles.contains(&Role::Admin), action);
                            assert_eq!(
                                got.is_ok(),
                                expected,
                                "{roles:?} of {agency_id:?}, {action:?} on {:?}",
                                history.0
                            );
                            checked += 1;
                        }
                    }
                }
            }
            assert!(checked > 10_000, "{checked}");
        }

        fn oracle(
            history: &AgreementHistory,
            agency_id: Option<&str>,
            admin: bool,
            action: GovernanceAction<'_>,
        ) -> bool {
            let ids =
                |parties: &[String]| -> BTreeSet<String> { parties.iter().cloned().collect() };
            let party_of = |set: &BTreeSet<String>| agency_id.is_some_and(|a| set.contains(a));
            let approved: Vec<i32> = history
                .events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Approved | EventKind::Imported))
                .filter_map(|e| e.version)
                .collect();
            let governing = approved
                .iter()
                .max()
                .copied()
                .or_else(|| history.versions.first().map(|v| v.version))
                .and_then(|g| history.versions.iter().find(|v| v.version == g))
                .map(|v| ids(&v.document.parties))
                .unwrap_or_default();
            let terminated = history
                .events
                .iter()
                .any(|e| e.kind == EventKind::Terminated);
            match action {
                GovernanceAction::Draft(document) => {
                    admin
                        || party_of(&if history.versions.is_empty() {
                            ids(&document.parties)
                        } else {
                            governing
                        })
                }
                GovernanceAction::Approve(version) => {
                    let Some(record) = history.versions.iter().find(|v| v.version == version)
                    else {
                        return false;
                    };
                    let mut required = ids(&record.document.parties);
                    required.extend(governing);
                    let already = record
                        .approvals
                        .iter()
                        .any(|a| Some(a.agency.as_str()) == agency_id);
                    !terminated
                        && approved.iter().all(|a| version > *a)
                        && party_of(&required)
                        && !already
                }
                GovernanceAction::Change(_) => !terminated && (admin || party_of(&governing)),
            }
        }

        #[test]
        fn a_version_is_approved_when_every_required_party_approves_after_the_latest_suspension() {
            let three = drafted()
                .approval(1, P, 5)
                .approval(1, N, 5)
                .approval(1, S, 5);
            assert!(!three.0.approval_complete(1));
            assert!(three.clone().approval(1, R, 6).0.approval_complete(1));
            // The narrower version's own parties are not enough: the governing ones too.
            let own = narrowing().approval(2, R, 15).approval(2, S, 15);
            assert!(!own.0.approval_complete(2));
            let governing = own.approval(2, P, 16).approval(2, N, 16);
            assert!(governing.0.approval_complete(2));
            // Approvals given before a suspension do not lift it.
            let before = narrowing()
                .approval(2, R, 15)
                .approval(2, S, 15)
                .approval(2, P, 15)
                .event(EventKind::Suspended, None, 16)
                .approval(2, N, 17);
            assert!(!before.0.approval_complete(2));
            assert!(!drafted().0.approval_complete(9));
        }

        #[test]
        fn admins_auditors_and_parties_see_an_agreement() {
            let history = narrowed().0;
            assert!(
                history.visible_to(&lead(P)),
                "a party to an earlier version"
            );
            assert!(history.visible_to(&who(None, &[Role::IgAuditor])));
            assert!(history.visible_to(&who(None, &[Role::Admin])));
            assert!(!history.visible_to(&who(None, &[Role::IgLead])));
            assert!(!drafted()
                .0
                .visible_to(&who(Some("thames-valley"), &[Role::IgLead])));
        }

        #[test]
        fn a_change_names_the_version_it_applies_to() {
            assert_eq!(
                drafted().0.current_reference(),
                Some(AgreementRef::new("isa", 1))
            );
            assert_eq!(
                narrowing().0.current_reference(),
                Some(AgreementRef::new("isa", 1))
            );
            assert_eq!(
                narrowed().0.current_reference(),
                Some(AgreementRef::new("isa", 2))
            );
            assert_eq!(Built::new().0.current_reference(), None);
        }
    }
}
