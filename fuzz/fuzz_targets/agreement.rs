//! Agreement documents as `concordat agreements import` reads them (TOML) and
//! `POST /v1/agreements` takes them (JSON), then validated against the shipped record
//! types and the development agencies.
//!
//! Holds: what either parser accepts round-trips through JSON and TOML unchanged and
//! validates the same way after the round trip; a validated agreement meets every rule
//! `AgreementDocument::validate` documents.

#![no_main]

mod common;

use concordat::domain::{
    agreement::{AgreementDocument, Known},
    consent::ConsentLevel,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(document) = toml::from_str::<AgreementDocument>(text) {
            check(&document);
        }
    }
    if let Ok(document) = serde_json::from_slice::<AgreementDocument>(data) {
        check(&document);
    }
});

fn check(document: &AgreementDocument) {
    let known = Known {
        agencies: common::agencies(),
        record_types: common::record_types(),
    };
    let verdict = document.validate(&known);

    let json = serde_json::to_string(document).expect("a document serialises to JSON");
    let from_json: AgreementDocument =
        serde_json::from_str(&json).expect("JSON written from a document reads back");
    assert_eq!(&from_json, document, "JSON round trip");
    assert_eq!(from_json.validate(&known), verdict, "validation after JSON");

    let toml_text = toml::to_string(document).expect("a document serialises to TOML");
    let from_toml: AgreementDocument =
        toml::from_str(&toml_text).expect("TOML written from a document reads back");
    assert_eq!(&from_toml, document, "TOML round trip");
    assert_eq!(from_toml.validate(&known), verdict, "validation after TOML");

    assert_eq!(
        document.reference().to_string(),
        format!("{}@{}", document.id, document.version)
    );

    let Ok(agreement) = verdict else { return };
    assert_eq!(agreement.id, document.id);
    assert_eq!(agreement.version, document.version);
    assert!(agreement.version >= 1);
    assert!(!agreement.title.is_empty());
    assert_eq!(agreement.title, agreement.title.trim());
    assert!(agreement.parties.len() >= 2);
    assert!(agreement
        .parties
        .iter()
        .all(|p| known.agencies.contains_key(p)));
    assert_eq!(document.party_ids(), agreement.parties);
    assert!(agreement.valid_from <= agreement.valid_until);
    assert_eq!(agreement.shares.len(), document.shares.len());
    assert!(!agreement.shares.is_empty());
    for share in &agreement.shares {
        assert!(agreement.parties.contains(&share.provider));
        assert!(!share.recipients.is_empty());
        assert!(share.recipients.is_subset(&agreement.parties));
        assert!(!share.purposes.is_empty());
        assert!(!share.record_types.is_empty());
        let kind = known.agencies[&share.provider];
        for name in &share.record_types {
            let record_type = known.record_types.get(name).expect("a known record type");
            assert!(record_type.holders.contains(&kind));
        }
        for (category, level) in &share.categories {
            assert!(known.record_types.has_category(category));
            assert!(*level != ConsentLevel::None || !agreement.lawful_basis.is_empty());
        }
        assert!(share
            .emergency_categories
            .iter()
            .all(|c| share.categories.contains_key(c)));
    }
}
