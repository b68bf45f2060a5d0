//! Queries on `subjects`, `subject_discharges` and `consents`. Every personal value is
//! sealed with the [`Keyring`] before it is written and opened after it is read; the
//! database only ever holds ciphertexts and blind indexes.

use std::collections::BTreeSet;

use diesel::prelude::*;
use time::{format_description::well_known::Iso8601, Date};

use super::{
    conflict_on_unique,
    schema::{consents, subject_discharges, subjects},
    Conflict, DbConnection, DbError,
};
use crate::{
    crypto::{CryptoError, Keyring},
    domain::{
        consent::{ConsentKind, ConsentLevel, ConsentVersion},
        subject::{Enrolment, NhsNumber, PncId, SubjectId},
        AgencyId, InvalidValue, Timestamp,
    },
};

const NHS_INDEX: &str = "nhs_number";
const PNC_INDEX: &str = "pnc_id";

fn sealed(error: CryptoError) -> DbError {
    DbError::Corrupt(InvalidValue::new("ciphertext", error.to_string()))
}

fn date_text(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn parse_date(text: &str) -> Result<Date, DbError> {
    Date::parse(text, &Iso8601::DATE)
        .map_err(|_| DbError::Corrupt(InvalidValue::new("date", "stored date does not parse")))
}

#[derive(Insertable)]
#[diesel(table_name = subjects)]
struct NewSubject {
    id: String,
    nhs_number_index: Option<String>,
    pnc_id_index: Option<String>,
    nhs_number: Option<Vec<u8>>,
    pnc_id: Option<Vec<u8>>,
    given_name: Vec<u8>,
    family_name: Vec<u8>,
    date_of_birth: Vec<u8>,
    enrolled_on: String,
    enrolled_by: String,
    created_at: i64,
}

/// What the programme may know of an enrolled subject without opening identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectSummary {
    pub id: SubjectId,
    pub enrolled_on: Date,
    pub discharged_on: Option<Date>,
}

/// Enrols `enrolment` as a new subject. A second enrolment of the same NHS number or PNC
/// id is a conflict (the blind indexes are unique).
pub fn enrol(
    conn: &mut DbConnection,
    keys: &Keyring,
    id: &SubjectId,
    enrolment: &Enrolment,
    enrolled_by: &str,
) -> Result<(), DbError> {
    let row_id = id.as_str();
    let seal = |column: &str, value: &[u8]| keys.seal(row_id, column, value).map_err(sealed);
    let row = NewSubject {
        id: id.to_string(),
        nhs_number_index: enrolment
            .nhs_number
            .as_ref()
            .map(|n| keys.blind_index(NHS_INDEX, n.digits())),
        pnc_id_index: enrolment
            .pnc_id
            .as_ref()
            .map(|p| keys.blind_index(PNC_INDEX, p.as_str())),
        nhs_number: enrolment
            .nhs_number
            .as_ref()
            .map(|n| seal("nhs_number", n.digits().as_bytes()))
            .transpose()?,
        pnc_id: enrolment
            .pnc_id
            .as_ref()
            .map(|p| seal("pnc_id", p.as_str().as_bytes()))
            .transpose()?,
        given_name: seal("given_name", enrolment.given_name.as_str().as_bytes())?,
        family_name: seal("family_name", enrolment.family_name.as_str().as_bytes())?,
        date_of_birth: seal(
            "date_of_birth",
            date_text(enrolment.date_of_birth).as_bytes(),
        )?,
        enrolled_on: date_text(enrolment.enrolled_on),
        enrolled_by: enrolled_by.to_owned(),
        created_at: Timestamp::now().micros(),
    };
    diesel::insert_into(subjects::table)
        .values(row)
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AlreadyEnrolled))?;
    Ok(())
}

/// An identifier a subject can be looked up by.
#[derive(Debug, Clone, Copy)]
pub enum Identifier<'a> {
    Nhs(&'a NhsNumber),
    Pnc(&'a PncId),
}

/// Refuses (as a conflict) an enrolment whose NHS number or PNC id is already enrolled, so
/// the refusal comes before the enrolment's audit entry; the unique indexes still decide a
/// race.
pub fn check_not_enrolled(
    conn: &mut DbConnection,
    keys: &Keyring,
    enrolment: &Enrolment,
) -> Result<(), DbError> {
    let identifiers = enrolment
        .nhs_number
        .as_ref()
        .map(Identifier::Nhs)
        .into_iter()
        .chain(enrolment.pnc_id.as_ref().map(Identifier::Pnc));
    for identifier in identifiers {
        if find_by_identifier(conn, keys, identifier)?.is_some() {
            return Err(DbError::Conflict(Conflict::AlreadyEnrolled));
        }
    }
    Ok(())
}

/// The subject enrolled with this identifier, found through its blind index.
pub fn find_by_identifier(
    conn: &mut DbConnection,
    keys: &Keyring,
    identifier: Identifier<'_>,
) -> Result<Option<SubjectId>, DbError> {
    let query = subjects::table.select(subjects::id).into_boxed();
    let query = match identifier {
        Identifier::Nhs(nhs) => {
            query.filter(subjects::nhs_number_index.eq(keys.blind_index(NHS_INDEX, nhs.digits())))
        }
        Identifier::Pnc(pnc) => {
            query.filter(subjects::pnc_id_index.eq(keys.blind_index(PNC_INDEX, pnc.as_str())))
        }
    };
    query
        .first::<String>(conn)
        .optional()?
        .map(|id| SubjectId::parse(&id).map_err(DbError::Corrupt))
        .transpose()
}

pub fn summary(conn: &mut DbConnection, id: &SubjectId) -> Result<Option<SubjectSummary>, DbError> {
    let enrolled: Option<String> = super::on_concrete!(conn, |conn| subjects::table
        .find(id.as_str())
        .select(subjects::enrolled_on)
        .first(conn)
        .optional())?;
    let Some(enrolled) = enrolled else {
        return Ok(None);
    };
    let discharged: Option<String> = super::on_concrete!(conn, |conn| subject_discharges::table
        .find(id.as_str())
        .select(subject_discharges::discharged_on)
        .first(conn)
        .optional())?;
    Ok(Some(SubjectSummary {
        id: id.clone(),
        enrolled_on: parse_date(&enrolled)?,
        discharged_on: discharged.as_deref().map(parse_date).transpose()?,
    }))
}

#[derive(Insertable)]
#[diesel(table_name = subject_discharges)]
struct NewDischarge {
    subject_id: String,
    discharged_on: String,
    reason: Vec<u8>,
    recorded_by: String,
    recorded_at: i64,
}

/// Records the discharge; a subject is discharged once.
pub fn discharge(
    conn: &mut DbConnection,
    keys: &Keyring,
    id: &SubjectId,
    discharged_on: Date,
    reason: &str,
    recorded_by: &str,
) -> Result<(), DbError> {
    let row = NewDischarge {
        subject_id: id.to_string(),
        discharged_on: date_text(discharged_on),
        reason: keys
            .seal(id.as_str(), "discharge_reason", reason.as_bytes())
            .map_err(sealed)?,
        recorded_by: recorded_by.to_owned(),
        recorded_at: Timestamp::now().micros(),
    };
    diesel::insert_into(subject_discharges::table)
        .values(row)
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AlreadyDischarged))?;
    Ok(())
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = consents)]
struct ConsentRow {
    subject_id: String,
    version: i32,
    kind: String,
    level: Option<String>,
    agencies: Option<String>,
    excluded_categories: String,
    evidence: Vec<u8>,
    effective_on: String,
    expires_on: Option<String>,
    recorded_by: String,
    recorded_at: i64,
}

/// A consent version with its evidence, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedConsent {
    pub version: ConsentVersion,
    pub evidence: String,
}

/// The number the next consent version of the subject will take.
pub fn next_consent_version(conn: &mut DbConnection, id: &SubjectId) -> Result<i32, DbError> {
    let latest: Option<i32> = consents::table
        .filter(consents::subject_id.eq(id.as_str()))
        .select(diesel::dsl::max(consents::version))
        .first(conn)?;
    Ok(latest.unwrap_or(0) + 1)
}

/// Appends consent version `version` (a consent given or a withdrawal). It must be the
/// next one: if another coordinator recorded in between, this is a conflict, not a silent
/// renumbering (the audit entry already names `version`).
pub fn record_consent(
    conn: &mut DbConnection,
    keys: &Keyring,
    id: &SubjectId,
    version: i32,
    kind: &ConsentKind,
    evidence: &str,
    recorded_by: &str,
) -> Result<(), DbError> {
    super::exclusive(conn, super::LockKey::Consent, |conn| {
        if next_consent_version(conn, id)? != version {
            return Err(DbError::Conflict(Conflict::ChangedConcurrently));
        }
        let (level, agencies, excluded, effective_on, expires_on) = match kind {
            ConsentKind::Given {
                level,
                agencies,
                excluded_categories,
                given_on,
                expires_on,
            } => (
                Some(level.as_str().to_owned()),
                agencies
                    .as_ref()
                    .map(|a| a.iter().map(AgencyId::as_str).collect::<Vec<_>>().join(",")),
                excluded_categories
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
                date_text(*given_on),
                expires_on.map(date_text),
            ),
            ConsentKind::Withdrawn { withdrawn_on } => {
                (None, None, String::new(), date_text(*withdrawn_on), None)
            }
        };
        let row = ConsentRow {
            subject_id: id.to_string(),
            version,
            kind: kind.as_str().to_owned(),
            level,
            agencies,
            excluded_categories: excluded,
            evidence: keys
                .seal(
                    id.as_str(),
                    &format!("consent_evidence:{version}"),
                    evidence.as_bytes(),
                )
                .map_err(sealed)?,
            effective_on,
            expires_on,
            recorded_by: recorded_by.to_owned(),
            recorded_at: Timestamp::now().micros(),
        };
        diesel::insert_into(consents::table)
            .values(row)
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, Conflict::ChangedConcurrently))?;
        Ok(())
    })
}

/// Every consent version of the subject, oldest first.
pub fn consent_history(
    conn: &mut DbConnection,
    keys: &Keyring,
    id: &SubjectId,
) -> Result<Vec<RecordedConsent>, DbError> {
    let rows: Vec<ConsentRow> = consents::table
        .filter(consents::subject_id.eq(id.as_str()))
        .order(consents::version)
        .select(ConsentRow::as_select())
        .load(conn)?;
    rows.into_iter()
        .map(|row| open_consent(keys, row))
        .collect()
}

/// Every consent version of the subject, oldest first, without opening the evidence:
/// what deciding a read needs.
pub fn consent_versions(
    conn: &mut DbConnection,
    id: &SubjectId,
) -> Result<Vec<ConsentVersion>, DbError> {
    let rows: Vec<ConsentRow> = super::on_concrete!(conn, |conn| consents::table
        .filter(consents::subject_id.eq(id.as_str()))
        .order(consents::version)
        .select(ConsentRow::as_select())
        .load(conn))?;
    rows.into_iter().map(consent_version).collect()
}

fn open_consent(keys: &Keyring, row: ConsentRow) -> Result<RecordedConsent, DbError> {
    let evidence = keys
        .open_text(
            &row.subject_id,
            &format!("consent_evidence:{}", row.version),
            &row.evidence,
        )
        .map_err(sealed)?;
    Ok(RecordedConsent {
        version: consent_version(row)?,
        evidence,
    })
}

/// The version a row stores, without opening its evidence.
fn consent_version(row: ConsentRow) -> Result<ConsentVersion, DbError> {
    let corrupt = |what: &str| DbError::Corrupt(InvalidValue::new("consent", what));
    let effective_on = parse_date(&row.effective_on)?;
    let kind = match row.kind.as_str() {
        "given" => ConsentKind::Given {
            level: row
                .level
                .as_deref()
                .ok_or_else(|| corrupt("level missing"))?
                .parse::<ConsentLevel>()
                .map_err(DbError::Corrupt)?,
            agencies: row
                .agencies
                .as_deref()
                .map(|list| {
                    list.split(',')
                        .filter(|a| !a.is_empty())
                        .map(AgencyId::parse)
                        .collect::<Result<BTreeSet<_>, _>>()
                })
                .transpose()
                .map_err(DbError::Corrupt)?,
            excluded_categories: row
                .excluded_categories
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            given_on: effective_on,
            expires_on: row.expires_on.as_deref().map(parse_date).transpose()?,
        },
        "withdrawn" => ConsentKind::Withdrawn {
            withdrawn_on: effective_on,
        },
        _ => return Err(corrupt("unknown kind")),
    };
    let recorded_at = Timestamp::from_micros(row.recorded_at);
    if recorded_at.to_datetime().is_none() {
        return Err(corrupt("recorded_at"));
    }
    Ok(ConsentVersion {
        version: row.version,
        kind,
        recorded_at,
        recorded_by: row.recorded_by,
    })
}

/// A person on the programme's caseload, opened for the coordinators who hold it.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub id: SubjectId,
    pub given_name: String,
    pub family_name: String,
    pub nhs_number: Option<String>,
    pub pnc_id: Option<String>,
    pub enrolled_on: Date,
    /// Every consent version, oldest first; evidence stays sealed.
    pub consents: Vec<ConsentVersion>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = subjects)]
struct EnrolledRow {
    id: String,
    nhs_number: Option<Vec<u8>>,
    pnc_id: Option<Vec<u8>>,
    given_name: Vec<u8>,
    family_name: Vec<u8>,
    enrolled_on: String,
}

/// Everyone enrolled and not discharged, with their consent versions: two queries, however
/// long the caseload.
pub fn caseload(conn: &mut DbConnection, keys: &Keyring) -> Result<Vec<Enrolled>, DbError> {
    let rows: Vec<EnrolledRow> = subjects::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            subject_discharges::table.filter(subject_discharges::subject_id.eq(subjects::id)),
        )))
        .order(subjects::enrolled_on)
        .select(EnrolledRow::as_select())
        .load(conn)?;
    let mut consents_of = enrolled_consents(conn)?;
    rows.into_iter()
        .map(|row| {
            let open = |column: &str, sealed_value: &[u8]| {
                keys.open_text(&row.id, column, sealed_value)
                    .map_err(sealed)
            };
            Ok(Enrolled {
                given_name: open("given_name", &row.given_name)?,
                family_name: open("family_name", &row.family_name)?,
                nhs_number: row
                    .nhs_number
                    .as_deref()
                    .map(|value| open("nhs_number", value))
                    .transpose()?,
                pnc_id: row
                    .pnc_id
                    .as_deref()
                    .map(|value| open("pnc_id", value))
                    .transpose()?,
                enrolled_on: parse_date(&row.enrolled_on)?,
                consents: consents_of.remove(&row.id).unwrap_or_default(),
                id: SubjectId::parse(&row.id).map_err(DbError::Corrupt)?,
            })
        })
        .collect()
}

/// The consent versions of everyone enrolled and not discharged, oldest first, by subject
/// id; evidence stays sealed and no identifier is opened. Subjects with no consent recorded
/// have no entry. One query, however long the caseload.
pub fn enrolled_consents(
    conn: &mut DbConnection,
) -> Result<std::collections::BTreeMap<String, Vec<ConsentVersion>>, DbError> {
    let rows: Vec<ConsentRow> = consents::table
        .filter(diesel::dsl::not(diesel::dsl::exists(
            subject_discharges::table
                .filter(subject_discharges::subject_id.eq(consents::subject_id)),
        )))
        .order((consents::subject_id, consents::version))
        .select(ConsentRow::as_select())
        .load(conn)?;
    let mut consents_of: std::collections::BTreeMap<String, Vec<ConsentVersion>> =
        std::collections::BTreeMap::new();
    for row in rows {
        let subject = row.subject_id.clone();
        consents_of
            .entry(subject)
            .or_default()
            .push(consent_version(row)?);
    }
    Ok(consents_of)
}

/// Everyone ever enrolled, as the evaluation sees them: enrolment and discharge dates and
/// the day of each record of the measured types. Reads no payload and returns no ids.
pub fn cohort(
    conn: &mut DbConnection,
) -> Result<Vec<crate::domain::evaluation::CohortMember>, DbError> {
    use std::collections::BTreeMap;

    use crate::domain::evaluation::{CohortMember, Measure};
    let enrolled: Vec<(String, String)> = subjects::table
        .select((subjects::id, subjects::enrolled_on))
        .load(conn)?;
    let discharged: BTreeMap<String, String> = subject_discharges::table
        .select((
            subject_discharges::subject_id,
            subject_discharges::discharged_on,
        ))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let measured: Vec<&str> = Measure::ALL.iter().map(|m| m.record_type()).collect();
    let events: Vec<(String, String, i64)> = super::schema::records::table
        .filter(super::schema::records::record_type.eq_any(measured))
        .select((
            super::schema::records::subject_id,
            super::schema::records::record_type,
            super::schema::records::occurred_at,
        ))
        .load(conn)?;
    let mut members: BTreeMap<String, CohortMember> = BTreeMap::new();
    for (id, enrolled_on) in enrolled {
        let member = CohortMember {
            enrolled_on: parse_date(&enrolled_on)?,
            discharged_on: discharged.get(&id).map(|d| parse_date(d)).transpose()?,
            events: Vec::new(),
        };
        members.insert(id, member);
    }
    for (id, record_type, occurred_at) in events {
        let (Some(member), Some(measure)) =
            (members.get_mut(&id), Measure::for_record_type(&record_type))
        else {
            continue;
        };
        let day = Timestamp::from_micros(occurred_at)
            .to_datetime()
            .ok_or_else(|| DbError::Corrupt(InvalidValue::new("occurred_at", "out of range")))?
            .date();
        member.events.push((measure, day));
    }
    Ok(members.into_values().collect())
}
