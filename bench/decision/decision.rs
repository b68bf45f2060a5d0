//! Decision-core benchmarks: the decision of one read (what a police mentor is released of
//! a subject's six records), the same decision made by Cedar from a policy set generated
//! from the same agreement, the redaction of one record, and the encoding and hashing of
//! the read's audit entry. Figures go in BENCHMARKS.md. Run from the repository root with
//! `cargo bench --manifest-path bench/decision/Cargo.toml`.
//!
//! Before anything is measured, the set-up holds the Cedar policies to our decision over
//! every consent level, exclusion, coverage, purpose, break-glass flag and recipient, and
//! panics if they release different fields: the comparison is only worth making between two
//! things that decide the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up fails loudly on purpose"
)]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    hint::black_box,
    str::FromStr,
    time::{Duration, Instant},
};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, RestrictedExpression,
};
use concordat::{
    app::records::{self, Release},
    audit::{merkle, Action, Decision, PendingEntry},
    db::records::Record,
    domain::{
        agreement::{Agreement, AgreementDocument, Known},
        consent::{ConsentLevel, EffectiveConsent},
        purpose::Purpose,
        record::RecordId,
        record_type::RecordTypes,
        subject::SubjectId,
        AgencyId, AgencyKind, LeafIndex, Role, Timestamp,
    },
    policy::{self, AccessRequest, TypeDecision},
    redaction,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};

const SUBJECT: &str = "subj_aaaaaaaaaaaaaaaaaaaaaaaaaa";
const POLICE: &str = "hampshire-police";

/// `(record id, field)`: what a read released.
type Released = BTreeSet<(String, String)>;

fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap()
}

fn record_types() -> RecordTypes {
    RecordTypes::from_toml(
        include_str!("../../config/record-types.toml"),
        "record-types.toml",
    )
    .unwrap()
}

/// The shipped example agreement, parsed and validated as the gateway imports it.
fn example_agreement(types: &RecordTypes) -> Agreement {
    let agencies: BTreeMap<AgencyId, AgencyKind> = [
        (POLICE, AgencyKind::Police),
        ("iow-nhs", AgencyKind::Health),
        ("scas", AgencyKind::Ambulance),
        ("iow-recovery", AgencyKind::Programme),
    ]
    .into_iter()
    .map(|(id, kind)| (agency(id), kind))
    .collect();
    let document: AgreementDocument =
        toml::from_str(include_str!("../../config/agreements/isa-iow-recovery.toml")).unwrap();
    document
        .validate(&Known {
            agencies: &agencies,
            record_types: types,
        })
        .unwrap()
}

/// A subject's records, like the development samples: NHS plans and an A&E attendance
/// (shared with the police under the agreement), two of the police's own records (whole)
/// and an ambulance call-out (not shared with the police: left out).
fn subject_records() -> Vec<Record> {
    let stored = |holder: &str, record_type: &str, data: Value| Record {
        id: RecordId::generate(),
        subject: SubjectId::parse(SUBJECT).unwrap(),
        record_type: record_type.to_owned(),
        holder: agency(holder),
        occurred_at: Timestamp::from_micros(1_772_355_600_000_000),
        data,
    };
    vec![
        stored("iow-nhs", "health.crisis_plan", crisis_plan()),
        stored(
            "iow-nhs",
            "health.care_plan",
            json!({"reviewed_on": "2026-02-15", "care_coordinator": "Synthetic coordinator",
                "goals": "Stable housing", "appointments": ["2026-03-01", "2026-04-01"],
                "diagnosis": "Synthetic diagnosis text", "medication": "Synthetic medication",
                "adherence": "Good"}),
        ),
        stored(
            "iow-nhs",
            "health.ae_attendance",
            json!({"arrived_at": "2026-02-10T02:30:00Z", "presenting_complaint": "Synthetic complaint",
                "discharge_outcome": "Discharged to mentor", "self_harm": true}),
        ),
        stored(
            POLICE,
            "police.s136_detention",
            json!({"detained_at": "2026-01-20T23:10:00Z", "location": "Synthetic bridge",
                "place_of_safety": "Hospital", "grounds": "Synthetic grounds"}),
        ),
        stored(
            POLICE,
            "police.incident",
            json!({"reported_at": "2026-03-05T21:00:00Z", "incident_type": "welfare check",
                "summary": "Synthetic summary", "risk_markers": ["self_harm"]}),
        ),
        stored(
            "scas",
            "ambulance.callout",
            json!({"attended_at": "2026-02-10T01:50:00Z", "conveyed_to": "St Mary's",
                "clinical_impression": "Synthetic impression"}),
        ),
    ]
}

fn crisis_plan() -> Value {
    json!({"updated_on": "2026-02-01", "triggers": "Anniversaries; being alone at night",
        "what_helps": "A quiet room and a named mentor", "who_to_contact": "Sister (synthetic)",
        "risk_summary": "Self-harm when alone", "diagnosis": "Synthetic diagnosis text",
        "medication": "Synthetic medication"})
}

/// Consent at `coordination` with `risk` excluded, covering every party.
fn coordination_without_risk() -> EffectiveConsent {
    EffectiveConsent {
        level: ConsentLevel::Coordination,
        version: Some(2),
        agencies: None,
        excluded_categories: ["risk".to_owned()].into_iter().collect(),
    }
}

/// Our decision of one read as `app::records::read` makes it: admit, then decide and redact
/// every record. `None` when the read is refused.
fn our_read(access: &AccessRequest<'_>, types: &RecordTypes, stored: &[Record]) -> Option<Release> {
    policy::admit(access).ok()?;
    Some(records::release(access, types, stored))
}

fn our_released(release: Option<&Release>) -> Released {
    release
        .into_iter()
        .flat_map(|release| &release.records)
        .flat_map(|record| {
            record
                .data
                .keys()
                .map(|field| (record.record_id.clone(), field.clone()))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The same decision in Cedar.
//
// Entities: the principal (`Practitioner`: agency, roles), the subject (`Subject`: consent
// level as a number, excluded categories, the agencies covered or `covers_all`), each record
// (`Record`: type, holder, subject) and each field present (`Field`: record, category). The
// context carries the purpose and the break-glass flag. One request per (record, field):
// may the principal `read_field` it?
//
// Policies, generated from the agreement: a `forbid` that refuses the whole read as
// `policy::admit` does (not a practitioner, not a record-reading purpose, break-glass for
// anything but crisis response, no share for the recipient and purpose), a `permit` for a
// holder reading its own record, and a `permit` per (share, category) with the share's
// provider, recipients, purposes and record types, and its consent rule.
// ---------------------------------------------------------------------------------------

fn rank(level: ConsentLevel) -> i64 {
    ConsentLevel::ALL
        .iter()
        .position(|l| *l == level)
        .map(|p| i64::try_from(p).unwrap())
        .unwrap()
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

fn cedar_set<'a>(
    items: impl IntoIterator<Item = &'a str>,
    wrap: impl Fn(&str) -> String,
) -> String {
    let items: Vec<String> = items.into_iter().map(wrap).collect();
    format!("[{}]", items.join(", "))
}

fn agency_uid_text(id: &str) -> String {
    format!("Agency::{}", quoted(id))
}

/// The Cedar policy text equivalent to `agreements` under `policy::admit` and `policy::decide`.
fn cedar_policies(agreements: &[Agreement]) -> String {
    let shares: Vec<_> = agreements.iter().flat_map(|a| &a.shares).collect();
    let record_reading: Vec<&str> = Purpose::ALL
        .into_iter()
        .filter(|p| p.reads_records())
        .map(Purpose::as_str)
        .collect();
    let receives: Vec<String> = shares
        .iter()
        .map(|share| {
            format!(
                "({}.contains(principal.agency) && {}.contains(context.purpose))",
                cedar_set(
                    share.recipients.iter().map(AgencyId::as_str),
                    agency_uid_text
                ),
                cedar_set(share.purposes.iter().map(|p| p.as_str()), quoted),
            )
        })
        .collect();
    let mut text = format!(
        "// policy::admit\n\
         forbid (principal, action, resource) unless {{\n  \
           principal.roles.contains(\"practitioner\") &&\n  \
           {}.contains(context.purpose) &&\n  \
           (!context.break_glass || context.purpose == \"crisis_response\") &&\n  \
           ({})\n}};\n\n\
         // A holder reading its own record sees it whole.\n\
         permit (principal, action == Action::\"read_field\", resource)\n\
         when {{ resource.record.holder == principal.agency }};\n",
        cedar_set(record_reading, quoted),
        receives.join(" ||\n   "),
    );
    for (index, share) in shares.iter().enumerate() {
        for (category, level) in &share.categories {
            let mut release = Vec::new();
            if *level != ConsentLevel::None {
                release.push(format!(
                    "(resource.record.subject.consent_level >= {} && \
                     !resource.record.subject.excluded_categories.contains({}) && \
                     (resource.record.subject.consent_covers_all || \
                     resource.record.subject.consent_agencies.contains(principal.agency)))",
                    rank(*level),
                    quoted(category),
                ));
                if share.emergency_categories.contains(category) {
                    release.push("context.break_glass".to_owned());
                }
            }
            let release = if release.is_empty() {
                // Level `none`: released under the lawful basis, whatever the consent.
                String::new()
            } else {
                format!(" &&\n  ({})", release.join(" || "))
            };
            text.push_str(&format!(
                "\n// share {index}, category {category} at {level}\n\
                 permit (principal, action == Action::\"read_field\", resource) when {{\n  \
                   resource.category == {} &&\n  \
                   resource.record.holder == {} &&\n  \
                   {}.contains(principal.agency) &&\n  \
                   {}.contains(context.purpose) &&\n  \
                   {}.contains(resource.record.type){release}\n}};\n",
                quoted(category),
                agency_uid_text(share.provider.as_str()),
                cedar_set(
                    share.recipients.iter().map(AgencyId::as_str),
                    agency_uid_text
                ),
                cedar_set(share.purposes.iter().map(|p| p.as_str()), quoted),
                cedar_set(share.record_types.iter().map(String::as_str), quoted),
            ));
        }
    }
    text
}

/// What stays the same from read to read: the policy set and the names.
struct CedarGateway {
    policies: PolicySet,
    authorizer: Authorizer,
    read_field: EntityUid,
    agency: EntityTypeName,
    practitioner: EntityTypeName,
    subject: EntityTypeName,
    record: EntityTypeName,
    field: EntityTypeName,
}

/// One read made ready for Cedar: its entities and one request per (record, field).
struct CedarRead {
    entities: Entities,
    requests: Vec<(String, String, Request)>,
}

fn type_name(name: &str) -> EntityTypeName {
    EntityTypeName::from_str(name).unwrap()
}

impl CedarGateway {
    fn new(agreements: &[Agreement]) -> Self {
        let text = cedar_policies(agreements);
        Self {
            policies: PolicySet::from_str(&text)
                .unwrap_or_else(|e| panic!("generated Cedar policies do not parse: {e}\n{text}")),
            authorizer: Authorizer::new(),
            read_field: EntityUid::from_str(r#"Action::"read_field""#).unwrap(),
            agency: type_name("Agency"),
            practitioner: type_name("Practitioner"),
            subject: type_name("Subject"),
            record: type_name("Record"),
            field: type_name("Field"),
        }
    }

    fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    }

    fn agency_uid(&self, id: &AgencyId) -> RestrictedExpression {
        RestrictedExpression::new_entity_uid(Self::uid(&self.agency, id.as_str()))
    }

    /// Builds the entities and requests of one read from the same inputs our decision takes.
    fn prepare(
        &self,
        access: &AccessRequest<'_>,
        types: &RecordTypes,
        stored: &[Record],
    ) -> CedarRead {
        let string = |text: &str| RestrictedExpression::new_string(text.to_owned());
        let principal = Self::uid(&self.practitioner, "principal");
        let subject = Self::uid(&self.subject, SUBJECT);
        let consent = access.consent;
        let mut entities = vec![
            Entity::new(
                principal.clone(),
                HashMap::from([
                    ("agency".to_owned(), self.agency_uid(access.recipient)),
                    (
                        "roles".to_owned(),
                        RestrictedExpression::new_set(
                            access.roles.iter().map(|role| string(role.as_str())),
                        ),
                    ),
                ]),
                HashSet::new(),
            )
            .unwrap(),
            Entity::new(
                subject.clone(),
                HashMap::from([
                    (
                        "consent_level".to_owned(),
                        RestrictedExpression::new_long(rank(consent.level)),
                    ),
                    (
                        "excluded_categories".to_owned(),
                        RestrictedExpression::new_set(
                            consent.excluded_categories.iter().map(|c| string(c)),
                        ),
                    ),
                    (
                        "consent_covers_all".to_owned(),
                        RestrictedExpression::new_bool(consent.agencies.is_none()),
                    ),
                    (
                        "consent_agencies".to_owned(),
                        RestrictedExpression::new_set(
                            consent
                                .agencies
                                .iter()
                                .flatten()
                                .map(|a| self.agency_uid(a)),
                        ),
                    ),
                ]),
                HashSet::new(),
            )
            .unwrap(),
        ];
        let mut requests = Vec::new();
        let context = Context::from_pairs([
            ("purpose".to_owned(), string(access.purpose.as_str())),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(access.break_glass),
            ),
        ])
        .unwrap();
        for record in stored {
            // As `release` does: a type removed from configuration is never disclosed.
            let Some(record_type) = types.get(&record.record_type) else {
                continue;
            };
            let record_id = record.id.to_string();
            let record_uid = Self::uid(&self.record, &record_id);
            entities.push(
                Entity::new(
                    record_uid.clone(),
                    HashMap::from([
                        ("type".to_owned(), string(&record.record_type)),
                        ("holder".to_owned(), self.agency_uid(&record.holder)),
                        (
                            "subject".to_owned(),
                            RestrictedExpression::new_entity_uid(subject.clone()),
                        ),
                    ]),
                    HashSet::new(),
                )
                .unwrap(),
            );
            for field in record.data.as_object().into_iter().flat_map(|o| o.keys()) {
                let category = record_type
                    .fields
                    .get(field)
                    .map_or("unknown", |spec| spec.category.as_str());
                let field_uid = Self::uid(&self.field, &format!("{record_id}/{field}"));
                entities.push(
                    Entity::new(
                        field_uid.clone(),
                        HashMap::from([
                            (
                                "record".to_owned(),
                                RestrictedExpression::new_entity_uid(record_uid.clone()),
                            ),
                            ("category".to_owned(), string(category)),
                        ]),
                        HashSet::new(),
                    )
                    .unwrap(),
                );
                let request = Request::new(
                    principal.clone(),
                    self.read_field.clone(),
                    field_uid,
                    context.clone(),
                    None,
                )
                .unwrap();
                requests.push((record_id.clone(), field.clone(), request));
            }
        }
        CedarRead {
            entities: Entities::from_entities(entities, None).unwrap(),
            requests,
        }
    }

    /// One `is_authorized` per (record, field); the fields allowed.
    fn decide(&self, read: &CedarRead) -> Released {
        read.requests
            .iter()
            .filter(|(_, _, request)| {
                let response =
                    self.authorizer
                        .is_authorized(request, &self.policies, &read.entities);
                response.decision() == CedarDecision::Allow
            })
            .map(|(record, field, _)| (record.clone(), field.clone()))
            .collect()
    }

    /// As `decide`, insisting that no policy failed to evaluate (a model error would
    /// otherwise pass for a deny).
    fn decide_checked(&self, read: &CedarRead) -> Released {
        let mut released = Released::new();
        for (record, field, request) in &read.requests {
            let response = self
                .authorizer
                .is_authorized(request, &self.policies, &read.entities);
            let errors: Vec<String> = response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect();
            assert!(
                errors.is_empty(),
                "Cedar policy errors for {record}/{field}: {errors:?}"
            );
            if response.decision() == CedarDecision::Allow {
                released.insert((record.clone(), field.clone()));
            }
        }
        released
    }

    fn read(&self, access: &AccessRequest<'_>, types: &RecordTypes, stored: &[Record]) -> Released {
        self.decide(&self.prepare(access, types, stored))
    }
}

/// Panics unless Cedar and our decision release the same fields, for the benchmark's read
/// and for every combination of consent level, exclusion, coverage, purpose, break-glass and
/// recipient (each agency in turn reads the same records), and for a caller who is not a
/// practitioner.
fn assert_equivalent(
    cedar: &CedarGateway,
    agreements: &[Agreement],
    types: &RecordTypes,
    stored: &[Record],
) {
    let practitioner: BTreeSet<Role> = [Role::Practitioner].into_iter().collect();
    let coordinator: BTreeSet<Role> = [Role::Coordinator].into_iter().collect();
    let recipients = [POLICE, "iow-nhs", "scas", "iow-recovery"].map(agency);
    let exclusions: [&[&str]; 4] = [&[], &["risk"], &["contact", "clinical"], &["care_plan"]];
    let coverage = [
        None,
        Some(vec![agency("iow-recovery")]),
        Some(vec![agency(POLICE)]),
    ];
    let mut compared = 0usize;
    let mut released_somewhere = 0usize;
    for level in ConsentLevel::ALL {
        for excluded in exclusions {
            for covered in &coverage {
                let consent = EffectiveConsent {
                    level,
                    version: Some(1),
                    agencies: covered.as_ref().map(|list| list.iter().cloned().collect()),
                    excluded_categories: excluded.iter().map(|c| (*c).to_owned()).collect(),
                };
                for purpose in Purpose::ALL {
                    for break_glass in [false, true] {
                        for recipient in &recipients {
                            for roles in [&practitioner, &coordinator] {
                                let access = AccessRequest {
                                    recipient,
                                    roles,
                                    purpose,
                                    break_glass,
                                    consent: &consent,
                                    agreements,
                                };
                                let ours = our_released(our_read(&access, types, stored).as_ref());
                                let theirs =
                                    cedar.decide_checked(&cedar.prepare(&access, types, stored));
                                assert_eq!(
                                    ours, theirs,
                                    "Cedar and our decision differ for {recipient} {roles:?}, \
                                     {purpose}, break-glass {break_glass}, consent {level} \
                                     excluding {excluded:?} covering {covered:?}"
                                );
                                compared += 1;
                                released_somewhere += usize::from(!ours.is_empty());
                            }
                        }
                    }
                }
            }
        }
    }
    // The sweep must have exercised both outcomes, or it proved nothing.
    assert!(released_somewhere > 0 && released_somewhere < compared);
    eprintln!(
        "Cedar and our decision release the same fields in all {compared} reads compared \
         ({released_somewhere} releasing something)"
    );
}

struct Fixture {
    types: RecordTypes,
    agreements: Vec<Agreement>,
    roles: BTreeSet<Role>,
    police: AgencyId,
    consent: EffectiveConsent,
    stored: Vec<Record>,
}

impl Fixture {
    fn new() -> Self {
        let types = record_types();
        let agreements = vec![example_agreement(&types)];
        Self {
            types,
            agreements,
            roles: [Role::Practitioner].into_iter().collect(),
            police: agency(POLICE),
            consent: coordination_without_risk(),
            stored: subject_records(),
        }
    }

    /// The benchmark's read: the police mentor, crisis response, no break-glass.
    fn access(&self) -> AccessRequest<'_> {
        AccessRequest {
            recipient: &self.police,
            roles: &self.roles,
            purpose: Purpose::CrisisResponse,
            break_glass: false,
            consent: &self.consent,
            agreements: &self.agreements,
        }
    }
}

fn decision(c: &mut Criterion) {
    let fixture = Fixture::new();
    let cedar = CedarGateway::new(&fixture.agreements);
    assert_equivalent(&cedar, &fixture.agreements, &fixture.types, &fixture.stored);
    let access = fixture.access();
    let ours = our_released(our_read(&access, &fixture.types, &fixture.stored).as_ref());
    // 4 of the crisis plan and 4 of the care plan (not the clinical fields, nor the
    // excluded risk summary), 2 of the A&E attendance, the 8 of the police's own records;
    // nothing of the call-out.
    assert_eq!(ours.len(), 18, "the benchmark's read released {ours:?}");
    let prepared = cedar.prepare(&access, &fixture.types, &fixture.stored);
    assert_eq!(prepared.requests.len(), 29);
    assert_eq!(cedar.decide_checked(&prepared), ours);

    let mut group = c.benchmark_group("decision");
    group.bench_function("one_read", |b| {
        b.iter(|| {
            our_read(
                black_box(&access),
                &fixture.types,
                black_box(&fixture.stored),
            )
        });
    });
    group.bench_function("cedar_one_read", |b| {
        b.iter(|| {
            cedar.read(
                black_box(&access),
                &fixture.types,
                black_box(&fixture.stored),
            )
        });
    });
    // Cedar's evaluation alone, with the read's entities and requests built beforehand: a
    // lower bound for any gateway built on it.
    group.bench_function("cedar_is_authorized_only", |b| {
        b.iter(|| cedar.decide(black_box(&prepared)));
    });
    group.finish();

    ratio(&fixture, &cedar, &prepared);
}

/// Times both reads afresh, interleaved, and prints how many times slower Cedar is.
fn ratio(fixture: &Fixture, cedar: &CedarGateway, prepared: &CedarRead) {
    const ROUNDS: u32 = 20;
    const PER_ROUND: u32 = 200;
    let access = fixture.access();
    let (mut ours, mut theirs, mut evaluation) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(our_read(
                black_box(&access),
                &fixture.types,
                &fixture.stored,
            ));
        }
        ours += started.elapsed();
        let started = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(cedar.read(black_box(&access), &fixture.types, &fixture.stored));
        }
        theirs += started.elapsed();
        let started = Instant::now();
        for _ in 0..PER_ROUND {
            black_box(cedar.decide(black_box(prepared)));
        }
        evaluation += started.elapsed();
    }
    let reads = ROUNDS * PER_ROUND;
    eprintln!(
        "one read: ours {:.2?}, Cedar {:.2?} ({:.1}x ours), Cedar's is_authorized calls alone \
         {:.2?} ({:.1}x ours)",
        ours / reads,
        theirs / reads,
        theirs.as_secs_f64() / ours.as_secs_f64(),
        evaluation / reads,
        evaluation.as_secs_f64() / ours.as_secs_f64(),
    );
}

fn redaction(c: &mut Criterion) {
    let fixture = Fixture::new();
    let access = fixture.access();
    let plan = fixture.types.get("health.crisis_plan").unwrap();
    let decision = policy::decide(&access, &agency("iow-nhs"), plan);
    let data = crisis_plan();
    let redacted = redaction::apply(&decision, plan, &data);
    // The clinical fields are withheld by the consent level, the risk summary by the
    // exclusion.
    assert!(matches!(decision, TypeDecision::Fields { .. }));
    assert_eq!(redacted.withheld.len(), 3, "{redacted:?}");
    assert_eq!(redacted.released.len(), 4, "{redacted:?}");

    let mut group = c.benchmark_group("redaction");
    group.bench_function("one_record", |b| {
        b.iter(|| redaction::apply(black_box(&decision), plan, black_box(&data)));
    });
    group.finish();
}

fn audit_entry(c: &mut Criterion) {
    let fixture = Fixture::new();
    let release = our_read(&fixture.access(), &fixture.types, &fixture.stored).unwrap();
    let mut entry = PendingEntry::new(
        "7f3c2a9e-4b1d-4e8a-9c61-2d5f8b0e1a47",
        Action::RecordsRead,
        Decision::Granted,
        "ok",
    );
    entry.principal_id = Some("police-mentor".into());
    entry.agency_id = Some(POLICE.into());
    entry.roles = vec!["practitioner".into()];
    entry.certificate_sha256 = Some("ab".repeat(32));
    entry.purpose = Some(Purpose::CrisisResponse.to_string());
    entry.subject_id = Some(SUBJECT.into());
    entry.consent_version = Some(2);
    entry.record_ids = release.record_ids;
    entry.released = release.released;
    entry.withheld = release.withheld;
    entry.agreements = release.agreements;
    entry.response_sha256 = Some("cd".repeat(32));
    let leaf = entry
        .clone()
        .at_index(LeafIndex(123_456))
        .leaf_data()
        .unwrap();
    eprintln!(
        "a records.read entry naming {} records, {} released and {} withheld fields: {} bytes of leaf data",
        entry.record_ids.len(),
        entry.released.len(),
        entry.withheld.len(),
        leaf.len()
    );

    let mut group = c.benchmark_group("audit_entry");
    group.bench_function("encode_and_hash", |b| {
        b.iter_batched(
            || entry.clone(),
            |pending| {
                let data = pending.at_index(LeafIndex(123_456)).leaf_data().unwrap();
                merkle::leaf_hash(&data)
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, decision, redaction, audit_entry);
criterion_main!(benches);
