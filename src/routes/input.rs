//! Parsing the inputs several routes share: dates, free text, the subject in the path.
//! Each failure is a 422 (or 404 for a path) that names the field and never repeats it.

use actix_web::HttpRequest;
use time::{format_description::well_known::Iso8601, Date, OffsetDateTime};

use crate::{domain::subject::SubjectId, error::ApiError, routes::trail::annotate};

pub fn parse_date(field: &'static str, raw: &str) -> Result<Date, ApiError> {
    Date::parse(raw, &Iso8601::DATE)
        .map_err(|_| ApiError::invalid_field(field, "must be a date, YYYY-MM-DD"))
}

pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// The subject in the path; the audit entry names it even when the request is refused.
pub fn path_subject(req: &HttpRequest, raw: &str) -> Result<SubjectId, ApiError> {
    let id = SubjectId::parse(raw).map_err(|_| ApiError::NotFound("No such subject.".into()))?;
    annotate(req, |a| a.subject_id = Some(id.to_string()));
    Ok(id)
}

/// Free text kept as evidence or a reason: present, bounded, no control characters
/// other than line breaks.
pub fn parse_text(field: &'static str, raw: &str, max: usize) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ApiError::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}
