//! The identifier parsers of `domain::subject` and friends: NHS numbers (modulus 11),
//! Police National Computer ids (`YY/NNNNNNNX`, check letter), and the random subject
//! and record ids.
//!
//! Holds: an accepted identifier re-rendered (digits alone, spaced `3 3 4`, lower case for
//! a PNC id) parses to the same value; an NHS number is ten ASCII digits and every single
//! digit change of it is refused; every other check letter of an accepted PNC id is refused.

#![no_main]

use concordat::domain::{
    record::RecordId,
    subject::{NhsNumber, PncId, SubjectId},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    nhs(raw);
    pnc(raw);
    if let Ok(id) = SubjectId::parse(raw) {
        assert_eq!(id.as_str(), raw);
        assert_eq!(SubjectId::parse(&id.to_string()), Ok(id));
    }
    if let Ok(id) = RecordId::parse(raw) {
        assert_eq!(id.as_str(), raw);
        assert_eq!(RecordId::parse(&id.to_string()), Ok(id));
    }
});

fn nhs(raw: &str) {
    let Ok(number) = NhsNumber::parse(raw) else {
        return;
    };
    let digits = number.digits();
    assert_eq!(digits.len(), 10);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(digits, raw.replace(' ', ""));
    assert!(NhsNumber::parse(digits) == Ok(number.clone()));
    let spaced = format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..]);
    assert!(NhsNumber::parse(&spaced) == Ok(number.clone()));
    for position in 0..10 {
        for delta in 1..10u8 {
            let mut changed = digits.as_bytes().to_vec();
            changed[position] = b'0' + (changed[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(changed).expect("digits");
            assert!(NhsNumber::parse(&changed).is_err(), "{changed} accepted");
        }
    }
}

fn pnc(raw: &str) {
    let Ok(id) = PncId::parse(raw) else {
        return;
    };
    let text = id.as_str();
    assert_eq!(text.len(), 11);
    assert_eq!(text, raw.trim().to_ascii_uppercase());
    assert!(PncId::parse(text) == Ok(id.clone()));
    assert!(PncId::parse(&text.to_ascii_lowercase()) == Ok(id.clone()));
    assert!(PncId::parse(&format!("  {text}\t")) == Ok(id.clone()));
    let (body, letter) = text.split_at(10);
    for other in b'A'..=b'Z' {
        if char::from(other).to_string() != letter {
            let changed = format!("{body}{}", char::from(other));
            assert!(PncId::parse(&changed).is_err(), "{changed} accepted");
        }
    }
}
