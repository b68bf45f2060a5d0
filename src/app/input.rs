//! Parsing the inputs several use cases share: dates, instants, free text and the subject
//! a call is about. Each failure
//! names the field and never repeats what was sent.

use time::{Date, OffsetDateTime};

use super::{AppError, Call};
use crate::domain::{subject::SubjectId, timestamp::calendar_date, Timestamp};

pub fn parse_date(field: &'static str, raw: &str) -> Result<Date, AppError> {
    calendar_date(raw).ok_or_else(|| AppError::invalid(field, "must be a date, YYYY-MM-DD"))
}

/// An optional RFC 3339 instant (search and export bounds).
pub fn parse_instant(
    field: &'static str,
    raw: Option<&str>,
) -> Result<Option<Timestamp>, AppError> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw)
            .ok_or_else(|| AppError::invalid(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// Free text kept as evidence or a reason: present, bounded, no control characters
/// other than line breaks and tabs, no text-direction controls.
pub fn parse_text(field: &'static str, raw: &str, max: usize) -> Result<String, AppError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if text.chars().any(crate::domain::is_forbidden_in_text) {
        return Err(AppError::invalid(
            field,
            "must not contain control or text-direction characters",
        ));
    }
    Ok(text.to_owned())
}

/// The subject a call is about, from a path or an argument, named in the call's entry at
/// once so that even a refused call says whom it was about. Text that cannot be a subject
/// id is answered as an unknown subject.
pub fn subject(call: &Call, raw: &str) -> Result<SubjectId, AppError> {
    let id = SubjectId::parse(raw).map_err(|_| AppError::not_found("subject"))?;
    let named = id.to_string();
    call.audit.annotate(|entry| entry.subject_id = Some(named));
    Ok(id)
}
