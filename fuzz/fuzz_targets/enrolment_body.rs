//! The body of `POST /v1/subjects` (`app::subjects::EnrolRequest`) through the checks
//! `app::subjects::enrol` makes before it touches the database, in its order:
//! `NhsNumber::parse`, `PncId::parse`, `PersonName::parse`, `app::input::parse_date` and
//! `Enrolment::new` against today.
//!
//! Holds: an accepted enrolment has an identifier, a date of birth before today and an
//! enrolment date between birth and today; names are trimmed, 1 to 100 characters and free
//! of control and text-direction characters, and parse to themselves; every accepted date
//! has a four-digit year (storage writes dates as `YYYY-MM-DD` and reads them back with
//! the same parser).

#![no_main]

mod common;

use concordat::{
    app::{
        input::{parse_date, today},
        subjects::EnrolRequest,
    },
    domain::{
        is_forbidden_in_text,
        subject::{Enrolment, NhsNumber, PersonName, PncId},
    },
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<EnrolRequest>(data) else {
        return;
    };
    let Ok(nhs) = request
        .nhs_number
        .as_deref()
        .map(NhsNumber::parse)
        .transpose()
    else {
        return;
    };
    let Ok(pnc) = request.pnc_id.as_deref().map(PncId::parse).transpose() else {
        return;
    };
    let given = PersonName::parse("given_name", &request.given_name);
    let family = PersonName::parse("family_name", &request.family_name);
    for (name, raw) in [
        (&given, &request.given_name),
        (&family, &request.family_name),
    ] {
        if let Ok(name) = name {
            check_name(name, raw);
        }
    }
    let (Ok(given), Ok(family)) = (given, family) else {
        return;
    };
    let born = parse_date("date_of_birth", &request.date_of_birth);
    let enrolled = parse_date("enrolled_on", &request.enrolled_on);
    let today = today();
    let (Ok(born), Ok(enrolled)) = (born, enrolled) else {
        return;
    };
    let Ok(enrolment) = Enrolment::new(nhs, pnc, given, family, born, enrolled, today) else {
        return;
    };
    assert!(enrolment.nhs_number.is_some() || enrolment.pnc_id.is_some());
    assert!(enrolment.date_of_birth < today);
    assert!(enrolment.date_of_birth <= enrolment.enrolled_on);
    assert!(enrolment.enrolled_on <= today);
    for (field, raw, date) in [
        ("date_of_birth", &request.date_of_birth, born),
        ("enrolled_on", &request.enrolled_on, enrolled),
    ] {
        common::assert_four_digit_year(field, raw, date);
    }
});

fn check_name(name: &PersonName, raw: &str) {
    let text = name.as_str();
    assert_eq!(text, raw.trim());
    assert!((1..=100).contains(&text.chars().count()));
    assert!(!text
        .chars()
        .any(|c| is_forbidden_in_text(c) || matches!(c, '\n' | '\r' | '\t')));
    assert!(PersonName::parse("given_name", text) == Ok(name.clone()));
}
