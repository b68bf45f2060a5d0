//! What several targets share: the repository's real record types and the development
//! agencies, built once per process.

#![allow(dead_code)]

use std::{collections::BTreeMap, sync::OnceLock};

use concordat::domain::{record_type::RecordTypes, AgencyId, AgencyKind};

/// `config/record-types.toml`, as shipped.
pub const RECORD_TYPES_TOML: &str = include_str!("../../../config/record-types.toml");

pub fn record_types() -> &'static RecordTypes {
    static TYPES: OnceLock<RecordTypes> = OnceLock::new();
    TYPES.get_or_init(|| {
        RecordTypes::from_toml(RECORD_TYPES_TOML, "config/record-types.toml")
            .unwrap_or_else(|e| panic!("the shipped record types must load: {e}"))
    })
}

/// The development agencies, as `concordat dev` registers them (`cli::dev::SAMPLE_AGENCIES`,
/// private to its module) and `config/agreements/isa-iow-recovery.toml` names them.
const AGENCIES: [(&str, AgencyKind); 4] = [
    ("hampshire-police", AgencyKind::Police),
    ("iow-nhs", AgencyKind::Health),
    ("scas", AgencyKind::Ambulance),
    ("iow-recovery", AgencyKind::Programme),
];

pub fn agencies() -> &'static BTreeMap<AgencyId, AgencyKind> {
    static KNOWN: OnceLock<BTreeMap<AgencyId, AgencyKind>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        AGENCIES
            .iter()
            .map(|(id, kind)| {
                let id = AgencyId::parse(id).unwrap_or_else(|e| panic!("{id}: {e}"));
                (id, *kind)
            })
            .collect()
    })
}

/// Storage writes a date as `{:04}-{:02}-{:02}` of its parts and reads it back with
/// `Date::parse(_, &Iso8601::DATE)` (`db::subjects`), and the API documents every date
/// field as `YYYY-MM-DD`: a date the API accepts must have a year of four digits, or the
/// stored row no longer reads.
pub fn assert_four_digit_year(field: &str, raw: &str, date: time::Date) {
    if known("dates") {
        return;
    }
    assert!(
        (0..=9999).contains(&date.year()),
        "{field} {raw:?} was accepted as year {}: storage writes it as {:?}, which does not parse back",
        date.year(),
        format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
    );
}

/// Whether a finding that needs a fix in `src/` is to be stepped over, so that a long run
/// explores past it: `CONCORDAT_FUZZ_KNOWN=dates,render` names them (README, "Findings").
/// Unset, as in `fuzz/ci`, every assertion holds.
pub fn known(finding: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("CONCORDAT_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect()
        })
        .iter()
        .any(|k| k == finding)
}
