//! People in the programme cohort: a random pseudonymous id, and identifiers that can
//! only be built valid. Identifiers and names never leave the gateway in logs or audit
//! entries; the storage layer keeps them only encrypted.

use std::fmt;

use serde::Serialize;
use time::Date;

use super::{parse_random_id, random_id, InvalidValue};

/// A subject's pseudonymous id: `subj_` and 26 base32 characters (128 random bits).
/// It says nothing about the person and is the only handle the API and audit use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SubjectId(String);

impl SubjectId {
    pub fn generate() -> Self {
        Self(random_id("subj_"))
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        parse_random_id("subj_", raw)
            .map(Self)
            .ok_or_else(|| InvalidValue::new("subject_id", "is not a subject id"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An NHS number: ten digits whose last is the modulus-11 check digit of the first nine
/// (weights 10 down to 2; 11 − remainder, 11 → 0; a result of 10 makes the number invalid).
/// Spaces are accepted on input (`943 476 5919`).
#[derive(Clone, PartialEq, Eq)]
pub struct NhsNumber(String);

impl NhsNumber {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let digits: String = raw.chars().filter(|c| *c != ' ').collect();
        let invalid = |message: &str| InvalidValue::new("nhs_number", message);
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("must be 10 digits"));
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = values
            .iter()
            .take(9)
            .zip((2..=10).rev())
            .map(|(d, w)| d * w)
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(invalid("is not a valid NHS number (check digit)")),
            check => check,
        };
        if values.get(9) != Some(&check) {
            return Err(invalid("is not a valid NHS number (check digit)"));
        }
        Ok(Self(digits))
    }

    /// The ten digits, no spaces: the form that is encrypted and blind-indexed.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

/// Never printed: an identifier must not reach a log by way of `{:?}`.
impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(..)")
    }
}

/// A Police National Computer id, `YY/NNNNNNNX`: two-digit year, seven-digit serial and a
/// check letter, `ZABCDEFGHJKLMNPQRTUVWXY[(YY and the seven digits as one number) mod 23]`.
#[derive(Clone, PartialEq, Eq)]
pub struct PncId(String);

const PNC_CHECK_LETTERS: &[u8; 23] = b"ZABCDEFGHJKLMNPQRTUVWXY";

impl PncId {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let id = raw.trim().to_ascii_uppercase();
        let invalid = |message: &str| InvalidValue::new("pnc_id", message);
        let bytes = id.as_bytes();
        let shaped = bytes.len() == 11
            && bytes.get(2) == Some(&b'/')
            && bytes
                .iter()
                .take(2)
                .chain(bytes.iter().skip(3).take(7))
                .all(u8::is_ascii_digit);
        let Some(&letter) = bytes.last().filter(|_| shaped) else {
            return Err(invalid("must look like YY/NNNNNNNX"));
        };
        let number: u64 = id
            .get(..2)
            .zip(id.get(3..10))
            .and_then(|(year, serial)| format!("{year}{serial}").parse().ok())
            .ok_or_else(|| invalid("must look like YY/NNNNNNNX"))?;
        if PNC_CHECK_LETTERS.get((number % 23) as usize) != Some(&letter) {
            return Err(invalid("is not a valid PNC id (check letter)"));
        }
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PncId(..)")
    }
}

/// A given or family name: 1 to 100 characters, no control or text-direction characters.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(InvalidValue::new(field, "must be 1 to 100 characters"));
        }
        if name
            .chars()
            .any(|c| matches!(c, '\n' | '\r' | '\t') || super::is_forbidden_in_text(c))
        {
            return Err(InvalidValue::new(
                field,
                "must not contain control or text-direction characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName(..)")
    }
}

/// What enrolment records about a person. At least one identifier is required so that a
/// second enrolment of the same person can be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub nhs_number: Option<NhsNumber>,
    pub pnc_id: Option<PncId>,
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub date_of_birth: Date,
    pub enrolled_on: Date,
}

impl Enrolment {
    pub fn new(
        nhs_number: Option<NhsNumber>,
        pnc_id: Option<PncId>,
        given_name: PersonName,
        family_name: PersonName,
        date_of_birth: Date,
        enrolled_on: Date,
        today: Date,
    ) -> Result<Self, InvalidValue> {
        if nhs_number.is_none() && pnc_id.is_none() {
            return Err(InvalidValue::new(
                "nhs_number",
                "an NHS number or a PNC id is required",
            ));
        }
        if date_of_birth >= today {
            return Err(InvalidValue::new("date_of_birth", "must be in the past"));
        }
        if enrolled_on < date_of_birth {
            return Err(InvalidValue::new(
                "enrolled_on",
                "must not be before the date of birth",
            ));
        }
        if enrolled_on > today {
            return Err(InvalidValue::new(
                "enrolled_on",
                "must not be in the future",
            ));
        }
        Ok(Self {
            nhs_number,
            pnc_id,
            given_name,
            family_name,
            date_of_birth,
            enrolled_on,
        })
    }
}

/// A discharge is dated on or after enrolment and not in the future.
pub fn check_discharge(
    enrolled_on: Date,
    discharged_on: Date,
    today: Date,
) -> Result<(), InvalidValue> {
    if discharged_on < enrolled_on {
        return Err(InvalidValue::new(
            "discharged_on",
            "must not be before enrolment",
        ));
    }
    if discharged_on > today {
        return Err(InvalidValue::new(
            "discharged_on",
            "must not be in the future",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nhs_numbers_with_good_check_digits_parse() {
        for ok in [
            "9434765919",
            "943 476 5919",
            "4010232137",
            "9990000018",
            "9990000069",
        ] {
            assert!(NhsNumber::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().digits(),
            "9434765919"
        );
    }

    #[test]
    fn nhs_numbers_with_bad_shape_or_check_digit_fail() {
        for bad in [
            "9434765918",
            "943476591",
            "94347659190",
            "94347A5919",
            "",
            "0000000010",
        ] {
            assert!(NhsNumber::parse(bad).is_err(), "{bad}");
        }
        // 123456789x: the weighted sum leaves a check digit of 10, so no tenth digit works.
        for last in 0..=9 {
            assert!(NhsNumber::parse(&format!("123456789{last}")).is_err());
        }
    }

    #[test]
    fn identifiers_never_print() {
        let nhs = NhsNumber::parse("9434765919").unwrap();
        assert!(!format!("{nhs:?}").contains("943"));
        let pnc = PncId::parse("12/1234567C").unwrap();
        assert!(!format!("{pnc:?}").contains("1234567"));
    }

    #[test]
    fn pnc_ids_carry_their_check_letter() {
        // 121234567 mod 23 = 3 → 'C'
        assert!(PncId::parse("12/1234567C").is_ok());
        assert!(PncId::parse(" 12/1234567c ").is_ok());
        assert!(PncId::parse("19/0001234E").is_ok());
        for bad in [
            "12/1234567L",
            "121234567C",
            "12/123456C",
            "1A/1234567C",
            "12-1234567C",
            "",
        ] {
            assert!(PncId::parse(bad).is_err(), "{bad}");
        }
        // 00/0000000 → 0 mod 23 → 'Z'
        assert!(PncId::parse("00/0000000Z").is_ok());
    }

    #[test]
    fn subject_ids_are_random_and_parse_back() {
        let (a, b) = (SubjectId::generate(), SubjectId::generate());
        assert_ne!(a, b);
        assert_eq!(SubjectId::parse(a.as_str()).unwrap(), a);
        assert!(SubjectId::parse("subj_../../etc").is_err());
    }

    #[test]
    fn enrolment_dates_must_make_sense() {
        use time::macros::date;
        let name = PersonName::parse("given_name", "Alex").unwrap();
        let nhs = Some(NhsNumber::parse("9434765919").unwrap());
        let enrol = |dob, on| {
            Enrolment::new(
                nhs.clone(),
                None,
                name.clone(),
                name.clone(),
                dob,
                on,
                date!(2026 - 11 - 28),
            )
        };
        assert!(enrol(date!(1990 - 01 - 01), date!(2026 - 01 - 01)).is_ok());
        assert_eq!(
            enrol(date!(2027 - 01 - 01), date!(2027 - 01 - 01))
                .unwrap_err()
                .field,
            "date_of_birth"
        );
        assert_eq!(
            enrol(date!(1990 - 01 - 01), date!(1989 - 01 - 01))
                .unwrap_err()
                .field,
            "enrolled_on"
        );
        let none = Enrolment::new(
            None,
            None,
            name.clone(),
            name,
            date!(1990 - 01 - 01),
            date!(2026 - 01 - 01),
            date!(2026 - 11 - 28),
        );
        assert_eq!(none.unwrap_err().field, "nhs_number");
    }

    #[test]
    fn a_discharge_falls_between_enrolment_and_today() {
        use time::macros::date;
        let (enrolled, today) = (date!(2026 - 01 - 15), date!(2026 - 11 - 28));
        for ok in [enrolled, date!(2026 - 06 - 30), today] {
            assert!(check_discharge(enrolled, ok, today).is_ok(), "{ok}");
        }
        for bad in [date!(2026 - 01 - 14), date!(2026 - 11 - 29)] {
            assert_eq!(
                check_discharge(enrolled, bad, today).unwrap_err().field,
                "discharged_on",
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_single_digit_change_is_always_caught(position in 0usize..10, delta in 1u8..10) {
            let valid = "9434765919";
            let mut digits: Vec<u8> = valid.bytes().collect();
            digits[position] = b'0' + (digits[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(digits).unwrap();
            prop_assert!(NhsNumber::parse(&changed).is_err(), "{} accepted", changed);
        }
    }
}
