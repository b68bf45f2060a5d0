//! The practitioner's pages about records: reading what the agreements and consent release
//! for a chosen purpose (each withheld field shown with why), emergency (break-glass)
//! access as a deliberate step, and submitting a record from a form generated from the
//! record type.

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    form_token,
    guard::Submitted,
    page::{self, form_again, london_time, ok, page, see_other, Errors, Field, Viewer},
    purpose_options, subject_path, Services,
};
use crate::{
    app::{
        input,
        records::{self, ReadRequest, RecordsResponse, Submission, SubmitRecord},
        AppError, Call,
    },
    domain::record_type::{FieldSpec, FieldType, RecordType, RecordTypes},
    error::ApiError,
};

/// The field a refused justification is named by in the use case (the API's header).
const JUSTIFICATION_HEADER: &str = "Concordat-Break-Glass";

/// Why a field was withheld, in words for the person reading.
fn withheld_because(reason: &str) -> &'static str {
    match reason {
        "consent" => "the person's consent level does not cover it",
        "consent_excluded" => "the person asked for it not to be shared",
        "agreement" => "no agreement in force shares it with your agency for this purpose",
        _ => "the rules do not release it",
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        other => other.to_string(),
    }
}

/// A released value as the reader should see it: instants in UK time, dates written out.
fn shown(field_type: Option<FieldType>, value: &Value) -> String {
    match (field_type, value) {
        (Some(FieldType::Datetime), Value::String(instant)) => london_time(instant),
        (Some(FieldType::Date), Value::String(date)) => page::day(date),
        _ => value_text(value),
    }
}

fn disclosure_page(viewer: &Viewer, types: &RecordTypes, response: &RecordsResponse) -> Markup {
    let disclosure = &response.disclosure;
    page(
        viewer,
        "Records",
        html! {
            @if disclosure.break_glass {
                div class="warning" role="alert" {
                    strong { "Emergency access." } " This access and your reason are recorded and will be reviewed by an IG auditor."
                }
            }
            dl class="facts" {
                dt { "Subject id" } dd { code { (disclosure.subject_id) } }
                dt { "Purpose" } dd { (disclosure.purpose.as_str().replace('_', " ")) }
                dt { "Consent applied" } dd { (disclosure.consent.level.as_str())
                    @if let Some(version) = disclosure.consent.version { " (version " (version) ")" } }
                dt { "Audit entry" } dd { "#" (response.audit.leaf_index) }
            }
            @if disclosure.records.is_empty() {
                p class="notice" { "Nothing is shared with your agency for this purpose." }
            }
            @for record in &disclosure.records {
                section class="record" aria-labelledby=(format!("r-{}", record.record_id)) {
                    h3 id=(format!("r-{}", record.record_id)) { (record.record_type) }
                    p class="hint" { "Held by " (record.holder) ", " (london_time(&record.occurred_at))
                        @if let Some(agreement) = &record.agreement_id {
                            ", shared under " (agreement) @if let Some(v) = record.agreement_version { " version " (v) }
                        } @else { ", your agency's own record" } }
                    dl class="facts" {
                        @for (field, value) in &record.data {
                            @let field_type = types.get(&record.record_type).and_then(|t| t.fields.get(field)).map(|spec| spec.field_type);
                            dt { (field.replace('_', " ")) } dd { (shown(field_type, value)) }
                        }
                        @for withheld in &record.redacted {
                            dt { (withheld.field.replace('_', " ")) }
                            dd class="withheld" { "Withheld (" (withheld.category.replace('_', " ")) "): " (withheld_because(withheld.reason)) }
                        }
                    }
                }
            }
            @if let Some(cursor) = &disclosure.next_cursor {
                @if disclosure.break_glass {
                    p class="notice" { "Older records are not shown. Emergency access shows the newest records only." }
                } @else {
                    p class="no-print" {
                        a href=(older_records_path(&disclosure.subject_id, disclosure.purpose.as_str(), cursor)) { "Older records" }
                        " (another read, recorded in the audit trail like this one)"
                    }
                }
            }
            p class="no-print" { a href=(subject_path(&disclosure.subject_id, "/records/new")) { "Submit a record for this person" } }
        },
    )
}

fn older_records_path(subject: &str, purpose: &str, cursor: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("purpose", purpose)
        .append_pair("cursor", cursor)
        .finish();
    format!("{}?{query}", subject_path(subject, "/records"))
}

#[derive(Debug, Deserialize)]
pub struct PurposeQuery {
    #[serde(default)]
    purpose: String,
    /// Where the previous page ended ("Older records").
    cursor: Option<String>,
}

pub async fn read(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    query: web::Query<PurposeQuery>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject.into_inner();
    let query = query.into_inner();
    let request = ReadRequest {
        subject: subject.clone(),
        purpose: query.purpose,
        record_type: None,
        since: None,
        limit: None,
        cursor: query.cursor,
        justification: None,
    };
    match records::read(&gateway, &call, request).await {
        Ok(response) => Ok(ok(disclosure_page(
            &Viewer::of(&call),
            &gateway.record_types,
            &response,
        ))),
        Err(error @ AppError::Refused { .. }) => {
            let detail = error.to_string();
            let markup = page(
                &Viewer::of(&call),
                "Not shared",
                html! {
                    p class="refusal" { (detail) }
                    p { "If there is an immediate risk to someone's life, you can use "
                        a href=(subject_path(&subject, "/break-glass")) { "emergency access" } "." }
                },
            );
            Ok(page::shown_with(error.into(), markup))
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct BreakGlassForm {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    justification: String,
}

fn break_glass_page(
    viewer: &Viewer,
    token: &str,
    subject: &str,
    form: &BreakGlassForm,
    errors: &Errors,
) -> Markup {
    let chosen = if form.purpose.is_empty() {
        "crisis_response"
    } else {
        &form.purpose
    };
    page(
        viewer,
        "Emergency access",
        html! {
            (errors.summary())
            div class="warning" {
                p { strong { "Only when there is an immediate risk to someone's life." } }
                p { "Emergency access releases what the agreements allow for this purpose whatever the person's consent. "
                    "Your name, your reason and what you saw are recorded, and an IG auditor will review this access." }
            }
            form method="post" action=(subject_path(subject, "/break-glass")) {
                (page::form_token(token))
                (page::select("purpose", "Purpose", &purpose_options(), chosen, errors))
                (Field::new("justification", "Why is there an immediate risk to life?").kind("textarea")
                    .value(&form.justification).required().hint("At least 20 characters. The reviewer will read this.")
                    .error(errors).render())
                button type="submit" class="danger" { "Access in an emergency" }
                a class="button secondary" href="/console/find" { "Cancel" }
            }
        },
    )
}

pub async fn break_glass_form(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    call.require_any(&[crate::domain::Role::Practitioner])?;
    Ok(ok(break_glass_page(
        &Viewer::of(&call),
        &form_token(&gateway, &call),
        subject.as_str(),
        &BreakGlassForm::default(),
        &Errors::none(),
    )))
}

pub async fn break_glass(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    Submitted(form): Submitted<BreakGlassForm>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject.into_inner();
    let request = ReadRequest {
        subject: subject.clone(),
        purpose: form.purpose.clone(),
        record_type: None,
        since: None,
        limit: None,
        cursor: None,
        justification: Some(form.justification.clone()),
    };
    match records::read(&gateway, &call, request).await {
        Ok(response) => Ok(ok(disclosure_page(
            &Viewer::of(&call),
            &gateway.record_types,
            &response,
        ))),
        Err(AppError::Invalid { field, message }) => {
            // The use case names the justification as the API carries it, in a header.
            let field = if field == JUSTIFICATION_HEADER {
                "justification".to_owned()
            } else {
                field
            };
            form_again(AppError::Invalid { field, message }, |errors| {
                break_glass_page(
                    &Viewer::of(&call),
                    &form_token(&gateway, &call),
                    &subject,
                    &form,
                    errors,
                )
            })
        }
        Err(error) => Err(error.into()),
    }
}

// ---- Submitting a record ----

#[derive(Debug, Deserialize)]
pub struct TypeQuery {
    #[serde(rename = "type")]
    record_type: Option<String>,
    /// The record just submitted, to confirm.
    submitted: Option<String>,
}

/// The input a field of `field_type` is entered with.
fn input_kind(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Integer | FieldType::Number => "number",
        FieldType::Date => "date",
        FieldType::Datetime => "datetime-local",
        FieldType::StringList => "textarea",
        FieldType::String | FieldType::Boolean => "text",
    }
}

fn input_hint(field_type: FieldType) -> Option<&'static str> {
    match field_type {
        FieldType::StringList => Some("One item per line."),
        FieldType::Datetime => Some("UK time (Europe/London)."),
        FieldType::Boolean => Some("yes or no."),
        FieldType::Integer => Some("A whole number."),
        _ => None,
    }
}

fn data_name(field: &str) -> String {
    format!("data.{field}")
}

/// The type's fields, the required ones first, each group in name order.
fn required_first(record_type: &RecordType) -> Vec<(&String, &FieldSpec)> {
    let mut fields: Vec<_> = record_type.fields.iter().collect();
    fields.sort_by_key(|(name, spec)| (!spec.required, *name));
    fields
}

fn data_field(name: &str, label: &str, spec: &FieldSpec, value: &str, errors: &Errors) -> Markup {
    let mut field = Field::new(name, label)
        .kind(input_kind(spec.field_type))
        .value(value)
        .error(errors);
    if spec.required {
        field = field.required();
    }
    if let Some(hint) = input_hint(spec.field_type) {
        field = field.hint(hint);
    }
    field.render()
}

fn submit_page(
    viewer: &Viewer,
    token: &str,
    subject: &str,
    record_type: &RecordType,
    values: &BTreeMap<String, String>,
    errors: &Errors,
) -> Markup {
    let value = |name: &str| values.get(name).map_or("", String::as_str);
    page(
        viewer,
        &format!("Submit a {} record", record_type.name),
        html! {
            (errors.summary())
            p { "Subject " code { (subject) } ". Required fields are marked." }
            form method="post" action=(subject_path(subject, "/records")) {
                (page::form_token(token))
                input type="hidden" name="type" value=(record_type.name);
                (Field::new("occurred_at", "When it happened").kind("datetime-local").value(value("occurred_at"))
                    .required().hint("UK time (Europe/London).").error(errors).render())
                @for (field, spec) in required_first(record_type) {
                    @let name = data_name(field);
                    @let label = field.replace('_', " ");
                    (data_field(&name, &label, spec, value(&name), errors))
                }
                button type="submit" { "Submit record" }
            }
        },
    )
}

pub async fn submit_form(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    query: web::Query<TypeQuery>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let held = records::types_held(&gateway, &call).await?;
    let viewer = Viewer::of(&call);
    let query = query.into_inner();
    let chosen = query
        .record_type
        .and_then(|name| held.iter().find(|t| t.name == name));
    let Some(record_type) = chosen else {
        return Ok(ok(page(
            &viewer,
            "Submit a record",
            html! {
                @if let Some(record_id) = &query.submitted {
                    p class="notice" role="status" { "Record " code { (record_id) } " submitted." }
                }
                p { "Choose the kind of record. These are the types your agency may hold." }
                ul { @for record_type in &held {
                    li { a href=(format!("{}?type={}", subject_path(subject.as_str(), "/records/new"), record_type.name)) { (record_type.name) } }
                } }
            },
        )));
    };
    Ok(ok(submit_page(
        &viewer,
        &form_token(&gateway, &call),
        subject.as_str(),
        record_type,
        &BTreeMap::new(),
        &Errors::none(),
    )))
}

/// A `datetime-local` value, entered in UK time, as the RFC 3339 instant it names.
fn london_instant(raw: &str) -> Option<String> {
    raw.parse::<jiff::civil::DateTime>()
        .ok()?
        .in_tz("Europe/London")
        .ok()
        .map(|zoned| zoned.timestamp().to_string())
}

/// The record's data from the form, each value in its field's type; every field that
/// cannot be read is named, all at once.
fn record_data(
    record_type: &RecordType,
    values: &BTreeMap<String, String>,
) -> Result<Value, Errors> {
    let mut data = Map::new();
    let mut errors = Errors::none();
    for (field, spec) in &record_type.fields {
        let name = data_name(field);
        let raw = values.get(&name).map_or("", |v| v.trim());
        if raw.is_empty() {
            continue;
        }
        let value = match spec.field_type {
            FieldType::String => Some(Value::String(raw.to_owned())),
            FieldType::Date => raw
                .parse::<jiff::civil::Date>()
                .ok()
                .map(|_| Value::String(raw.to_owned())),
            FieldType::Datetime => london_instant(raw).map(Value::String),
            FieldType::Integer => raw.parse::<i64>().ok().map(Value::from),
            FieldType::Number => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            FieldType::Boolean => match raw.to_lowercase().as_str() {
                "yes" | "true" => Some(Value::Bool(true)),
                "no" | "false" => Some(Value::Bool(false)),
                _ => None,
            },
            FieldType::StringList => Some(Value::Array(
                raw.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .map(|line| Value::String(line.to_owned()))
                    .collect(),
            )),
        };
        match value {
            Some(value) => {
                data.insert(field.clone(), value);
            }
            None => errors.add(&name, &format!("must be {}", spec.field_type.describe())),
        }
    }
    for (field, spec) in &record_type.fields {
        if spec.required
            && !data.contains_key(field)
            && errors.for_field(&data_name(field)).is_none()
        {
            errors.add(&data_name(field), "is required");
        }
    }
    if errors.is_empty() {
        Ok(Value::Object(data))
    } else {
        Err(errors)
    }
}

pub async fn submit(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    Submitted(values): Submitted<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let held = records::types_held(&gateway, &call).await?;
    let wanted = values.get("type").cloned().unwrap_or_default();
    let Some(record_type) = held.iter().find(|t| t.name == wanted) else {
        return Err(AppError::invalid("type", "is not a record type your agency may hold").into());
    };
    let again = |errors: &Errors| {
        submit_page(
            &Viewer::of(&call),
            &form_token(&gateway, &call),
            subject.as_str(),
            record_type,
            &values,
            errors,
        )
    };
    let occurred_at = values
        .get("occurred_at")
        .and_then(|raw| london_instant(raw));
    let data = record_data(record_type, &values);
    let (occurred_at, data) = match (occurred_at, data) {
        (Some(occurred_at), Ok(data)) => (occurred_at, data),
        (occurred_at, data) => {
            let mut errors = data.err().unwrap_or_default();
            if occurred_at.is_none() {
                errors.add("occurred_at", "must be a date and time");
            }
            let markup = again(&errors);
            return Ok(page::shown_with(errors.to_app_error().into(), markup));
        }
    };
    let submission = Submission {
        subject: subject.to_string(),
        record: SubmitRecord {
            record_type: record_type.name.clone(),
            occurred_at,
            data,
        },
    };
    match records::submit(&gateway, &call, submission).await {
        Ok(created) => Ok(see_other(&format!(
            "{}?submitted={}",
            subject_path(subject.as_str(), "/records/new"),
            created.record_id
        ))),
        Err(error) => form_again(error, again),
    }
}
