//! The decision core against the rule as the module doc of `policy` states it: hand-written cases for the example agreement, an
//! exhaustive walk of every consent level × purpose × break-glass × exclusion × coverage ×
//! agreement state, and property tests over random agreements, all held to an oracle that
//! states the rule as the specification words it.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use time::{macros::date, Date};

use super::*;
use crate::domain::{
    agreement::{status_on, AgreementDocument, Known, Lifecycle},
    record_type::RecordTypes,
    AgencyKind,
};

fn agency(id: &str) -> AgencyId {
    AgencyId::parse(id).unwrap()
}

fn agencies() -> BTreeMap<AgencyId, AgencyKind> {
    [
        ("hampshire-police", AgencyKind::Police),
        ("iow-nhs", AgencyKind::Health),
        ("scas", AgencyKind::Ambulance),
        ("iow-recovery", AgencyKind::Programme),
    ]
    .into_iter()
    .map(|(id, kind)| (agency(id), kind))
    .collect()
}

fn record_types() -> RecordTypes {
    RecordTypes::from_toml(
        include_str!("../../config/record-types.toml"),
        "record-types.toml",
    )
    .unwrap()
}

fn example() -> Agreement {
    let document: AgreementDocument = toml::from_str(include_str!(
        "../../config/agreements/isa-iow-recovery.toml"
    ))
    .unwrap();
    let (agencies, types) = (agencies(), record_types());
    document
        .validate(&Known {
            agencies: &agencies,
            record_types: &types,
        })
        .unwrap()
}

fn consent(level: ConsentLevel, excluded: &[&str], agencies: Option<&[&str]>) -> EffectiveConsent {
    EffectiveConsent {
        level,
        version: Some(1),
        agencies: agencies.map(|list| list.iter().map(|a| agency(a)).collect()),
        excluded_categories: excluded.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn practitioner() -> BTreeSet<Role> {
    [Role::Practitioner].into_iter().collect()
}

fn released(decision: &TypeDecision) -> BTreeSet<&str> {
    match decision {
        TypeDecision::Fields { released, .. } => released.iter().map(String::as_str).collect(),
        _ => BTreeSet::new(),
    }
}

fn reasons(decision: &TypeDecision) -> BTreeMap<&str, &str> {
    match decision {
        TypeDecision::Fields { withheld, .. } => withheld
            .iter()
            .map(|(f, r)| (f.as_str(), r.as_str()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The police mentor reading the NHS crisis plan.
fn police_reads_crisis_plan(
    consent: &EffectiveConsent,
    purpose: Purpose,
    break_glass: bool,
) -> TypeDecision {
    let (types, agreements, roles) = (record_types(), vec![example()], practitioner());
    let police = agency("hampshire-police");
    let request = AccessRequest {
        recipient: &police,
        roles: &roles,
        purpose,
        break_glass,
        consent,
        agreements: &agreements,
    };
    decide(
        &request,
        &agency("iow-nhs"),
        types.get("health.crisis_plan").unwrap(),
    )
}

const CRISIS_FIELDS: [&str; 5] = [
    "risk_summary",
    "triggers",
    "updated_on",
    "what_helps",
    "who_to_contact",
];
const ALL_PLAN_FIELDS: [&str; 7] = [
    "diagnosis",
    "medication",
    "risk_summary",
    "triggers",
    "updated_on",
    "what_helps",
    "who_to_contact",
];

#[test]
fn police_reading_a_crisis_plan_gets_exactly_what_each_consent_level_allows() {
    let cases: [(ConsentLevel, &[&str]); 4] = [
        (ConsentLevel::None, &[]),
        (ConsentLevel::Crisis, &CRISIS_FIELDS),
        (ConsentLevel::Coordination, &CRISIS_FIELDS),
        (ConsentLevel::Full, &ALL_PLAN_FIELDS),
    ];
    for (level, expected) in cases {
        let decision =
            police_reads_crisis_plan(&consent(level, &[], None), Purpose::CrisisResponse, false);
        assert_eq!(
            released(&decision),
            expected.iter().copied().collect(),
            "{level}"
        );
    }
    let crisis = police_reads_crisis_plan(
        &consent(ConsentLevel::Crisis, &[], None),
        Purpose::CrisisResponse,
        false,
    );
    assert_eq!(
        reasons(&crisis),
        [("diagnosis", "consent"), ("medication", "consent")]
            .into_iter()
            .collect()
    );
}

#[test]
fn exclusions_and_coverage_withhold_as_consent_excluded() {
    let excluded = police_reads_crisis_plan(
        &consent(ConsentLevel::Full, &["risk", "clinical"], None),
        Purpose::CareCoordination,
        false,
    );
    assert_eq!(
        reasons(&excluded),
        [
            ("diagnosis", "consent_excluded"),
            ("risk_summary", "consent_excluded")
        ]
        .into_iter()
        .collect()
    );

    let nhs_only = police_reads_crisis_plan(
        &consent(ConsentLevel::Full, &[], Some(&["iow-nhs"])),
        Purpose::CareCoordination,
        false,
    );
    assert!(released(&nhs_only).is_empty());
    assert!(reasons(&nhs_only)
        .values()
        .all(|r| *r == "consent_excluded"));
}

#[test]
fn break_glass_releases_only_emergency_categories_beyond_consent() {
    let decision = police_reads_crisis_plan(
        &consent(ConsentLevel::None, &[], None),
        Purpose::CrisisResponse,
        true,
    );
    assert_eq!(released(&decision), CRISIS_FIELDS.into_iter().collect());
    assert_eq!(
        reasons(&decision),
        [("diagnosis", "consent"), ("medication", "consent")]
            .into_iter()
            .collect()
    );
    // Even categories the person excluded: break-glass is for an immediate risk to life.
    let excluded = police_reads_crisis_plan(
        &consent(ConsentLevel::None, &["risk"], None),
        Purpose::CrisisResponse,
        true,
    );
    assert!(released(&excluded).contains("risk_summary"));
}

#[test]
fn holders_see_their_own_records_whole_and_unshared_types_are_omitted() {
    let (types, agreements, roles) = (record_types(), vec![example()], practitioner());
    let none = consent(ConsentLevel::None, &[], None);
    let police = agency("hampshire-police");
    let request = AccessRequest {
        recipient: &police,
        roles: &roles,
        purpose: Purpose::CrisisResponse,
        break_glass: false,
        consent: &none,
        agreements: &agreements,
    };
    assert_eq!(
        decide(&request, &police, types.get("police.incident").unwrap()),
        TypeDecision::Whole
    );
    assert_eq!(
        decide(
            &request,
            &agency("scas"),
            types.get("ambulance.callout").unwrap()
        ),
        TypeDecision::Omitted
    );
    let scas = agency("scas");
    let request = AccessRequest {
        recipient: &scas,
        ..request
    };
    assert_eq!(
        decide(
            &request,
            &agency("iow-nhs"),
            types.get("health.ae_attendance").unwrap()
        ),
        TypeDecision::Omitted
    );
}

#[test]
fn several_agreements_combine_by_union() {
    let (types, roles) = (record_types(), practitioner());
    let mut narrow = example();
    narrow.id = "isa-narrow".into();
    for share in &mut narrow.shares {
        share.categories.retain(|c, _| c == "crisis_plan");
    }
    let mut statutory = example();
    statutory.id = "isa-statutory".into();
    for share in &mut statutory.shares {
        share.categories = [("risk".to_owned(), ConsentLevel::None)]
            .into_iter()
            .collect();
        share.emergency_categories.clear();
    }
    let agreements = vec![narrow, statutory];
    let none = consent(ConsentLevel::None, &[], None);
    let police = agency("hampshire-police");
    let request = AccessRequest {
        recipient: &police,
        roles: &roles,
        purpose: Purpose::CrisisResponse,
        break_glass: false,
        consent: &none,
        agreements: &agreements,
    };
    let decision = decide(
        &request,
        &agency("iow-nhs"),
        types.get("health.crisis_plan").unwrap(),
    );
    assert_eq!(released(&decision), ["risk_summary"].into_iter().collect());
    assert_eq!(reasons(&decision)["triggers"], "consent");
    assert_eq!(reasons(&decision)["who_to_contact"], "agreement");
    // Shown as shared under the agreement that released something, not the first by id.
    assert_eq!(
        decision.shared_under(),
        Some(&AgreementRef::new("isa-statutory", 1))
    );
    assert_eq!(decision.agreements().count(), 2);
    let TypeDecision::Fields {
        agreements: used, ..
    } = decision
    else {
        panic!()
    };
    assert_eq!(used.len(), 2);
}

#[test]
fn a_record_released_by_no_field_is_shown_under_the_first_agreement_and_a_holders_under_none() {
    let applying: BTreeSet<AgreementRef> =
        [AgreementRef::new("isa-b", 2), AgreementRef::new("isa-a", 1)]
            .into_iter()
            .collect();
    let nothing_released = TypeDecision::Fields {
        released: BTreeSet::new(),
        withheld: BTreeMap::new(),
        agreements: applying,
        released_by: None,
    };
    assert_eq!(
        nothing_released.shared_under(),
        Some(&AgreementRef::new("isa-a", 1))
    );
    assert_eq!(TypeDecision::Whole.shared_under(), None);
    assert_eq!(TypeDecision::Omitted.agreements().count(), 0);
}

/// The rule `explain` names for each field of the crisis plan the police read.
fn rules_for_police(
    agreements: &[Agreement],
    consent: &EffectiveConsent,
    break_glass: bool,
) -> BTreeMap<String, String> {
    let (types, roles, police) = (record_types(), practitioner(), agency("hampshire-police"));
    let request = AccessRequest {
        recipient: &police,
        roles: &roles,
        purpose: Purpose::CrisisResponse,
        break_glass,
        consent,
        agreements,
    };
    let plan = types.get("health.crisis_plan").unwrap();
    let Explanation::Fields(fields) = explain(&request, &agency("iow-nhs"), plan) else {
        panic!("the crisis plan is shared with the police")
    };
    fields
        .iter()
        .map(|f| {
            let by = match f.ground {
                Ground::Consent {
                    agreement,
                    required,
                } => {
                    format!(
                        " by {}@{} at {}",
                        agreement.id,
                        agreement.version,
                        required.as_str()
                    )
                }
                Ground::NoConsentNeeded { agreement } | Ground::Emergency { agreement } => {
                    format!(" by {}@{}", agreement.id, agreement.version)
                }
                Ground::ConsentLevel { required } => format!(" needs {}", required.as_str()),
                Ground::NotShared | Ground::ExcludedCategory | Ground::AgencyScope => String::new(),
            };
            (f.field.to_owned(), format!("{}{by}", f.ground.rule()))
        })
        .collect()
}

#[test]
fn explain_names_the_rule_that_decided_each_field() {
    let agreements = vec![example()];
    let crisis = consent(ConsentLevel::Crisis, &["contact"], None);
    let rules = rules_for_police(&agreements, &crisis, false);
    let expected = [
        ("diagnosis", "consent_level needs full"),
        ("medication", "consent_level needs full"),
        (
            "risk_summary",
            "agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "triggers",
            "agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "updated_on",
            "agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "what_helps",
            "agreement_share by isa-iow-recovery@1 at crisis",
        ),
        ("who_to_contact", "excluded_category"),
    ];
    let as_map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
            .collect()
    };
    assert_eq!(rules, as_map(&expected));

    // Break-glass releases the excluded contact as an emergency category; the clinical
    // fields stay withheld.
    let rules = rules_for_police(&agreements, &crisis, true);
    assert_eq!(
        rules["who_to_contact"],
        "emergency_category by isa-iow-recovery@1"
    );
    assert_eq!(rules["diagnosis"], "consent_level needs full");

    // Consent that names only the NHS does not reach the police.
    let nhs_only = consent(ConsentLevel::Full, &[], Some(&["iow-nhs"]));
    let rules = rules_for_police(&agreements, &nhs_only, false);
    assert!(rules.values().all(|r| r == "agency_scope"), "{rules:?}");

    // A category no share lists, and one shared at `none`.
    let mut narrowed = example();
    narrowed.shares[0].categories.remove("medication");
    narrowed.shares[0]
        .categories
        .insert("risk".to_owned(), ConsentLevel::None);
    let rules = rules_for_police(&[narrowed], &consent(ConsentLevel::None, &[], None), false);
    assert_eq!(rules["medication"], "not_shared");
    assert_eq!(
        rules["risk_summary"],
        "agreement_share_without_consent by isa-iow-recovery@1"
    );
    assert_eq!(rules["triggers"], "consent_level needs crisis");
}

#[test]
fn admission_checks_role_purpose_and_agreement() {
    let (agreements, roles) = (vec![example()], practitioner());
    let full = consent(ConsentLevel::Full, &[], None);
    let police = agency("hampshire-police");
    let base = AccessRequest {
        recipient: &police,
        roles: &roles,
        purpose: Purpose::CrisisResponse,
        break_glass: false,
        consent: &full,
        agreements: &agreements,
    };
    assert_eq!(admit(&base), Ok(()));
    let coordinator: BTreeSet<Role> = [Role::Coordinator].into_iter().collect();
    assert_eq!(
        admit(&AccessRequest {
            roles: &coordinator,
            ..base
        }),
        Err(Refusal::Role)
    );
    for purpose in [
        Purpose::ServiceEvaluation,
        Purpose::Audit,
        Purpose::SubjectAccess,
    ] {
        assert_eq!(
            admit(&AccessRequest { purpose, ..base }),
            Err(Refusal::Purpose)
        );
    }
    assert_eq!(
        admit(&AccessRequest {
            purpose: Purpose::CareCoordination,
            break_glass: true,
            ..base
        }),
        Err(Refusal::Purpose)
    );
    // Nothing is shared with the police for safeguarding.
    assert_eq!(
        admit(&AccessRequest {
            purpose: Purpose::Safeguarding,
            ..base
        }),
        Err(Refusal::NoAgreement)
    );
    assert_eq!(
        admit(&AccessRequest {
            agreements: &[],
            ..base
        }),
        Err(Refusal::NoAgreement)
    );
}

/// The rule, word for word as `policy`'s module doc states it, as a predicate over one
/// field.
fn oracle(
    request: &AccessRequest<'_>,
    holder: &AgencyId,
    record_type: &RecordType,
    category: &str,
) -> bool {
    request.agreements.iter().any(|agreement| {
        agreement.shares.iter().any(|share| {
            share.provider == *holder
                && share.recipients.contains(request.recipient)
                && share.purposes.contains(&request.purpose)
                && share.record_types.contains(&record_type.name)
                && share.categories.get(category).is_some_and(|&level| {
                    (request.consent.level >= level
                        && !request.consent.excluded_categories.contains(category)
                        && request
                            .consent
                            .agencies
                            .as_ref()
                            .is_none_or(|a| a.contains(request.recipient)))
                        || level == ConsentLevel::None
                        || (request.break_glass && share.emergency_categories.contains(category))
                })
        })
    })
}

fn shared_at_all(request: &AccessRequest<'_>, holder: &AgencyId, record_type: &RecordType) -> bool {
    request
        .agreements
        .iter()
        .flat_map(|a| &a.shares)
        .any(|share| {
            share.provider == *holder
                && share.recipients.contains(request.recipient)
                && share.purposes.contains(&request.purpose)
                && share.record_types.contains(&record_type.name)
        })
}

/// Checks `decide` against the oracle for every (holder, type) pair.
fn agrees_with_oracle(request: &AccessRequest<'_>, types: &RecordTypes) -> Result<(), String> {
    for holder in agencies().keys() {
        for name in types.names() {
            let record_type = types.get(name).unwrap();
            let decision = decide(request, holder, record_type);
            let expected: BTreeSet<&str> = record_type
                .fields
                .iter()
                .filter(|(_, spec)| oracle(request, holder, record_type, &spec.category))
                .map(|(field, _)| field.as_str())
                .collect();
            match &decision {
                TypeDecision::Whole
                    if holder == request.recipient
                        && explain(request, holder, record_type) == Explanation::Whole => {}
                TypeDecision::Omitted
                    if holder != request.recipient
                        && !shared_at_all(request, holder, record_type)
                        && explain(request, holder, record_type) == Explanation::Omitted => {}
                TypeDecision::Fields {
                    released, withheld, ..
                } if holder != request.recipient => {
                    // The replay's rules say the same, field by field.
                    let Explanation::Fields(grounds) = explain(request, holder, record_type) else {
                        return Err(format!("{holder} {name}: explain disagrees with decide"));
                    };
                    for g in &grounds {
                        let said = match g.ground.outcome() {
                            Ok(_) => released.contains(g.field),
                            Err(reason) => withheld.get(g.field) == Some(&reason),
                        };
                        if !said
                            || (matches!(g.ground, Ground::Emergency { .. })
                                && !request.break_glass)
                        {
                            return Err(format!("{holder} {name}: {g:?} disagrees with decide"));
                        }
                    }
                    let got: BTreeSet<&str> = released.iter().map(String::as_str).collect();
                    if got != expected {
                        return Err(format!(
                            "{holder} {name}: released {got:?}, rule allows {expected:?}"
                        ));
                    }
                    if released.len() + withheld.len() != record_type.fields.len() {
                        return Err(format!(
                            "{holder} {name}: a field is neither released nor withheld"
                        ));
                    }
                }
                other => return Err(format!("{holder} {name}: unexpected {other:?}")),
            }
        }
    }
    Ok(())
}

#[test]
fn every_combination_for_the_example_agreement_follows_the_rule() {
    let types = record_types();
    let v1 = example();
    let mut v2 = example();
    v2.version = 2;
    for share in &mut v2.shares {
        share.categories.remove("clinical");
    }
    let versions = [v1, v2];
    let today = date!(2026 - 06 - 01);
    let states: [(&str, Vec<Lifecycle>, Date); 6] = [
        ("draft", vec![], today),
        ("active", vec![Lifecycle::Approved(1)], today),
        (
            "suspended",
            vec![Lifecycle::Approved(1), Lifecycle::Suspended],
            today,
        ),
        (
            "terminated",
            vec![Lifecycle::Approved(1), Lifecycle::Terminated],
            today,
        ),
        (
            "expired",
            vec![Lifecycle::Approved(1)],
            date!(2028 - 01 - 01),
        ),
        (
            "superseded",
            vec![Lifecycle::Approved(1), Lifecycle::Approved(2)],
            today,
        ),
    ];
    let roles = practitioner();
    let exclusions: [&[&str]; 3] = [&[], &["clinical"], &["crisis_plan", "risk"]];
    let coverages: [Option<&[&str]>; 2] = [None, Some(&["iow-nhs", "iow-recovery"])];
    let mut checked = 0;
    for (state, events, day) in &states {
        let (_, in_force) = status_on(&versions, events, *day);
        let agreements: Vec<Agreement> = in_force.cloned().into_iter().collect();
        if *state == "superseded" {
            assert_eq!(agreements[0].version, 2);
        }
        if matches!(*state, "draft" | "suspended" | "terminated" | "expired") {
            assert!(agreements.is_empty(), "{state}");
        }
        for recipient in agencies().keys() {
            for level in ConsentLevel::ALL {
                for purpose in Purpose::ALL {
                    for break_glass in [false, true] {
                        for excluded in exclusions {
                            for coverage in coverages {
                                let consent = consent(level, excluded, coverage);
                                let request = AccessRequest {
                                    recipient,
                                    roles: &roles,
                                    purpose,
                                    break_glass,
                                    consent: &consent,
                                    agreements: &agreements,
                                };
                                match admit(&request) {
                                    Ok(()) => agrees_with_oracle(&request, &types)
                                        .map_err(|e| format!("{state}: {e}"))
                                        .unwrap(),
                                    Err(_) => assert!(
                                        !purpose.reads_records()
                                            || (break_glass && purpose != Purpose::CrisisResponse)
                                            || !agreements
                                                .iter()
                                                .flat_map(|a| &a.shares)
                                                .any(|s| s.recipients.contains(recipient)
                                                    && s.purposes.contains(&purpose)),
                                        "{state} {recipient} {purpose} refused wrongly"
                                    ),
                                }
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 6 * 4 * 4 * 6 * 2 * 3 * 2);
}

fn arbitrary_share() -> impl Strategy<Value = Share> {
    let ids = ["hampshire-police", "iow-nhs", "scas", "iow-recovery"];
    let categories = [
        "crisis_plan",
        "risk",
        "contact",
        "care_plan",
        "clinical",
        "medication",
        "service_usage",
        "criminal_justice",
        "notes",
    ];
    let levels = ConsentLevel::ALL;
    (
        0..4usize,
        proptest::collection::btree_set(0..4usize, 1..4),
        proptest::collection::btree_set(0..3usize, 1..3),
        proptest::collection::btree_map(0..categories.len(), 0..4usize, 0..6),
        any::<u16>(),
    )
        .prop_map(
            move |(provider, recipients, purposes, cats, emergency_bits)| {
                let categories: BTreeMap<String, ConsentLevel> = cats
                    .into_iter()
                    .map(|(c, l)| (categories[c].to_owned(), levels[l]))
                    .collect();
                let emergency_categories = categories
                    .keys()
                    .enumerate()
                    .filter(|(i, _)| emergency_bits & (1 << i) != 0)
                    .map(|(_, c)| c.clone())
                    .collect();
                let record_types = [
                    "health.crisis_plan",
                    "health.care_plan",
                    "police.incident",
                    "ambulance.callout",
                    "programme.mentoring_session",
                    "emergency.call_999",
                ];
                Share {
                    provider: agency(ids[provider]),
                    recipients: recipients.into_iter().map(|r| agency(ids[r])).collect(),
                    purposes: purposes.into_iter().map(|p| Purpose::ALL[p]).collect(),
                    record_types: record_types.iter().map(|t| (*t).to_owned()).collect(),
                    categories,
                    emergency_categories,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn released_fields_are_exactly_what_the_rule_allows(
        shares in proptest::collection::vec(arbitrary_share(), 1..5),
        level in 0..4usize,
        excluded in proptest::collection::btree_set(prop_oneof![Just("risk"), Just("clinical"), Just("contact"), Just("crisis_plan")], 0..3),
        covered in proptest::option::of(proptest::collection::btree_set(0..4usize, 0..4)),
        recipient in 0..4usize,
        purpose in 0..3usize,
        break_glass in any::<bool>(),
    ) {
        let ids = ["hampshire-police", "iow-nhs", "scas", "iow-recovery"];
        let mut agreement = example();
        agreement.shares = shares;
        let agreements = vec![agreement];
        let consent = EffectiveConsent {
            level: ConsentLevel::ALL[level],
            version: Some(1),
            agencies: covered.map(|set| set.into_iter().map(|i| agency(ids[i])).collect()),
            excluded_categories: excluded.into_iter().map(str::to_owned).collect(),
        };
        let recipient = agency(ids[recipient]);
        let roles = practitioner();
        let request = AccessRequest {
            recipient: &recipient,
            roles: &roles,
            purpose: Purpose::ALL[purpose],
            break_glass,
            consent: &consent,
            agreements: &agreements,
        };
        prop_assert_eq!(agrees_with_oracle(&request, &record_types()), Ok(()));
    }
}
