//! The coordinator's and practitioner's pages about people: caseload, enrolment, finding a
//! person, consent with its full history, discharge. Each calls the use case the API's
//! matching endpoint calls.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    form_token, given,
    guard::Submitted,
    page::{self, day, form_again, london_time, ok, page, see_other, Errors, Field, Viewer},
    purpose_options, subject_path, Services,
};
use crate::{
    app::{
        consents::{self, ConsentChoices, ConsentHistory, ConsentRequest, WithdrawRequest},
        input,
        subjects::{self, DischargeRequest, EnrolRequest, LookupQuery},
        AppError, Call,
    },
    domain::{consent::ConsentLevel, subject::SubjectId, Role},
    error::ApiError,
};

// ---- Caseload ----

pub async fn caseload(gateway: Services, call: Call) -> Result<HttpResponse, ApiError> {
    let entries = subjects::caseload(&gateway, &call).await?;
    let today = input::today();
    Ok(ok(page(
        &Viewer::of(&call),
        "Caseload",
        html! {
            p { (entries.len()) " people enrolled and not discharged. Those without consent in force come first, then the soonest review." }
            div class="table-wrap" {
                table {
                    caption class="hint" { "Consent is reviewed with the person a year after it was given, or at its expiry if sooner." }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "NHS number" } th scope="col" { "PNC id" }
                        th scope="col" { "Enrolled" } th scope="col" { "Consent" } th scope="col" { "Expires" } th scope="col" { "Review by" } } }
                    tbody {
                        @for entry in &entries {
                            @let overdue = entry.review_due.is_none_or(|due| due <= today);
                            tr class=[overdue.then_some("overdue")] {
                                td { a href=(subject_path(entry.subject.id.as_str(), "/consents")) {
                                    (entry.subject.given_name) " " (entry.subject.family_name) } }
                                td { (entry.subject.nhs_number.as_deref().unwrap_or("—")) }
                                td { (entry.subject.pnc_id.as_deref().unwrap_or("—")) }
                                td { (day(&entry.subject.enrolled_on.to_string())) }
                                td { (entry.consent.level.as_str()) }
                                td { (entry.expires_on.map_or("—".to_owned(), |d| day(&d.to_string()))) }
                                td { @match entry.review_due {
                                    Some(due) if due <= today => strong { (day(&due.to_string())) ", overdue" },
                                    Some(due) => (day(&due.to_string())),
                                    None => strong { "Seek consent" },
                                } }
                            }
                        }
                    }
                }
            }
        },
    )))
}

// ---- Enrolment ----

#[derive(Debug, Default, Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    nhs_number: String,
    #[serde(default)]
    pnc_id: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    enrolled_on: String,
}

fn enrol_page(viewer: &Viewer, token: &str, form: &EnrolForm, errors: &Errors) -> Markup {
    page(
        viewer,
        "Enrol a person",
        html! {
            (errors.summary())
            form method="post" action="/console/subjects" {
                (page::form_token(token))
                (Field::new("nhs_number", "NHS number").value(&form.nhs_number)
                    .hint("Ten digits; spaces are fine. Give an NHS number, a PNC id, or both.").error(errors).render())
                (Field::new("pnc_id", "PNC id").value(&form.pnc_id).hint("For example 19/0001234E.").error(errors).render())
                (Field::new("given_name", "Given name").value(&form.given_name).required().error(errors).render())
                (Field::new("family_name", "Family name").value(&form.family_name).required().error(errors).render())
                (Field::new("date_of_birth", "Date of birth").kind("date").value(&form.date_of_birth).required().error(errors).render())
                (Field::new("enrolled_on", "Enrolled on").kind("date").value(&form.enrolled_on).required().error(errors).render())
                button type="submit" { "Enrol" }
            }
        },
    )
}

pub async fn enrol_form(gateway: Services, call: Call) -> Result<HttpResponse, ApiError> {
    call.require_any(&[Role::Coordinator])?;
    let form = EnrolForm {
        enrolled_on: input::today().to_string(),
        ..EnrolForm::default()
    };
    let token = form_token(&gateway, &call);
    Ok(ok(enrol_page(
        &Viewer::of(&call),
        &token,
        &form,
        &Errors::none(),
    )))
}

pub async fn enrol(
    gateway: Services,
    call: Call,
    Submitted(form): Submitted<EnrolForm>,
) -> Result<HttpResponse, ApiError> {
    let request = EnrolRequest {
        nhs_number: given(&form.nhs_number),
        pnc_id: given(&form.pnc_id),
        given_name: form.given_name.clone(),
        family_name: form.family_name.clone(),
        date_of_birth: form.date_of_birth.clone(),
        enrolled_on: form.enrolled_on.clone(),
    };
    match subjects::enrol(&gateway, &call, request).await {
        Ok(enrolled) => Ok(see_other(&subject_path(&enrolled.subject_id, "/consents"))),
        Err(error) => form_again(error, |errors| {
            enrol_page(
                &Viewer::of(&call),
                &form_token(&gateway, &call),
                &form,
                errors,
            )
        }),
    }
}

// ---- Finding a person ----

#[derive(Debug, Default, Deserialize)]
pub struct FindForm {
    #[serde(default)]
    nhs_number: String,
    #[serde(default)]
    pnc_id: String,
}

fn find_page(viewer: &Viewer, form: &FindForm, errors: &Errors) -> Markup {
    page(
        viewer,
        "Find a person",
        html! {
            (errors.summary())
            form method="get" action="/console/lookup" {
                (Field::new("nhs_number", "NHS number").value(&form.nhs_number).hint("Ten digits.").error(errors).render())
                p { "or" }
                (Field::new("pnc_id", "PNC id").value(&form.pnc_id).hint("For example 19/0001234E.").error(errors).render())
                button type="submit" { "Find" }
            }
        },
    )
}

pub async fn find(call: Call) -> Result<HttpResponse, ApiError> {
    call.require_any(&[Role::Coordinator, Role::Practitioner])?;
    Ok(ok(find_page(
        &Viewer::of(&call),
        &FindForm::default(),
        &Errors::none(),
    )))
}

/// The person enrolled under an identifier, and what the caller may do next.
pub async fn lookup(
    gateway: Services,
    call: Call,
    form: web::Query<FindForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let query = LookupQuery {
        nhs_number: given(&form.nhs_number),
        pnc_id: given(&form.pnc_id),
    };
    let found = match subjects::lookup(&gateway, &call, query).await {
        Ok(found) => found,
        Err(AppError::NotFound(message)) => {
            let errors = Errors::one("nhs_number", &message);
            let markup = find_page(&Viewer::of(&call), &form, &errors);
            return Ok(page::shown_with(ApiError::NotFound(message), markup));
        }
        Err(error) => {
            return form_again(error, |errors| find_page(&Viewer::of(&call), &form, errors))
        }
    };
    let viewer = Viewer::of(&call);
    let subject = found.subject_id;
    Ok(ok(page(
        &viewer,
        "Person found",
        html! {
            dl class="facts" { dt { "Subject id" } dd { code { (subject) } } }
            @if viewer.has(Role::Practitioner) {
                h2 { "Read what is shared" }
                form method="get" action=(subject_path(&subject, "/records")) {
                    (page::select("purpose", "Why are you reading?", &purpose_options(), "crisis_response", &Errors::none()))
                    button type="submit" { "Read records" }
                }
                p { a href=(subject_path(&subject, "/break-glass")) { "Emergency access (break-glass)" }
                    " — only when there is an immediate risk to life." }
                h2 { "Add a record" }
                p { a class="button secondary" href=(subject_path(&subject, "/records/new")) { "Submit a record" } }
            }
            @if viewer.has(Role::Coordinator) {
                ul {
                    li { a href=(subject_path(&subject, "/consents")) { "Consent, history and discharge" } }
                    li { a href=(subject_path(&subject, "/consents/new")) { "Record consent" } }
                    li { a href=(subject_path(&subject, "/access-report")) { "Who has seen this person's data" } }
                }
            }
        },
    )))
}

// ---- Consent ----

fn consent_page(
    viewer: &Viewer,
    token: &str,
    history: &ConsentHistory,
    withdraw: &WithdrawForm,
    discharge: &DischargeForm,
    errors: &Errors,
) -> Markup {
    let subject = &history.subject_id;
    let effective = &history.effective;
    page(
        viewer,
        "Consent",
        html! {
            (errors.summary())
            dl class="facts" {
                dt { "Subject id" } dd { code { (subject) } }
                dt { "Consent in force" } dd { strong { (effective.level.as_str()) }
                    @if let Some(version) = effective.version { " (version " (version) ")" } }
                dt { "Agencies covered" } dd { (effective.agencies.as_ref().map_or("every party to the agreements".to_owned(), |a| a.join(", "))) }
                dt { "Excluded categories" } dd { @if effective.excluded_categories.is_empty() { "none" } @else { (effective.excluded_categories.join(", ")) } }
            }
            @if viewer.has(Role::Coordinator) {
                p { a class="button" href=(subject_path(subject, "/consents/new")) { "Record consent" } }
            }
            h2 { "History" }
            @if history.history.is_empty() {
                p { "No consent has been recorded." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Version" } th scope="col" { "What" } th scope="col" { "Dates" }
                            th scope="col" { "Evidence" } th scope="col" { "Recorded" } } }
                        tbody {
                            @for item in &history.history {
                                tr {
                                    td { (item.version) }
                                    td {
                                        @if item.kind == "withdrawn" { strong { "Withdrawn" } } @else {
                                            "Given: " strong { (item.level.map_or("", ConsentLevel::as_str)) }
                                            br; "Agencies: " (item.agencies.as_ref().map_or("all parties".to_owned(), |a| a.join(", ")))
                                            @if !item.excluded_categories.is_empty() { br; "Excluding: " (item.excluded_categories.join(", ")) }
                                        }
                                    }
                                    td {
                                        @if let Some(on) = &item.given_on { "Given " (day(on)) }
                                        @if let Some(on) = &item.expires_on { br; "Expires " (day(on)) }
                                        @if let Some(on) = &item.withdrawn_on { "Withdrawn " (day(on)) }
                                    }
                                    td { (item.evidence) }
                                    td { (london_time(&item.recorded_at)) br; "by " (item.recorded_by) }
                                }
                            }
                        }
                    }
                }
            }
            @if viewer.has(Role::Coordinator) {
                (changes(token, subject, withdraw, discharge, errors))
            }
        },
    )
}

/// The withdrawal and discharge forms. Shown again alone when one is refused: drawing the
/// history again would disclose it under the refused change's entry, which the subject's
/// access report does not list.
fn changes(
    token: &str,
    subject: &str,
    withdraw: &WithdrawForm,
    discharge: &DischargeForm,
    errors: &Errors,
) -> Markup {
    html! {
        h2 { "Withdraw consent" }
        form method="post" action=(subject_path(subject, "/consents/withdraw")) {
            (page::form_token(token))
            (Field::new("withdrawn_on", "Withdrawn on").kind("date").value(&withdraw.withdrawn_on).required().error(errors).render())
            (Field::new("evidence", "How the person withdrew consent").kind("textarea").value(&withdraw.evidence).required().error(errors).render())
            button type="submit" class="danger" { "Withdraw consent" }
        }
        h2 { "Discharge from the programme" }
        form method="post" action=(subject_path(subject, "/discharge")) {
            (page::form_token(token))
            (Field::new("discharged_on", "Discharged on").kind("date").value(&discharge.discharged_on).required().error(errors).render())
            (Field::new("reason", "Reason").kind("textarea").value(&discharge.reason).required().error(errors).render())
            button type="submit" class="danger" { "Discharge" }
        }
    }
}

pub async fn consent_history(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let history = consents::history(&gateway, &call, &subject).await?;
    let today = input::today().to_string();
    Ok(ok(consent_page(
        &Viewer::of(&call),
        &form_token(&gateway, &call),
        &history,
        &WithdrawForm {
            withdrawn_on: today.clone(),
            evidence: String::new(),
        },
        &DischargeForm {
            discharged_on: today,
            reason: String::new(),
        },
        &Errors::none(),
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    withdrawn_on: String,
    #[serde(default)]
    evidence: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct DischargeForm {
    #[serde(default)]
    discharged_on: String,
    #[serde(default)]
    reason: String,
}

/// The withdrawal and discharge forms again after one was refused, with the error beside
/// its field and without the history (see [`changes`]).
fn changes_again(
    gateway: &Services,
    call: &Call,
    subject: &SubjectId,
    error: AppError,
    withdraw: &WithdrawForm,
    discharge: &DischargeForm,
) -> Result<HttpResponse, ApiError> {
    form_again(error, |errors| {
        page(
            &Viewer::of(call),
            "Consent",
            html! {
                (errors.summary())
                p { a href=(subject_path(subject.as_str(), "/consents")) { "Back to the consent history" } }
                (changes(&form_token(gateway, call), subject.as_str(), withdraw, discharge, errors))
            },
        )
    })
}

pub async fn withdraw(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    Submitted(form): Submitted<WithdrawForm>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let request = WithdrawRequest {
        evidence: form.evidence.clone(),
        withdrawn_on: form.withdrawn_on.clone(),
    };
    match consents::withdraw(&gateway, &call, &subject, request).await {
        Ok(_) => Ok(see_other(&subject_path(subject.as_str(), "/consents"))),
        Err(error) => {
            let discharge = DischargeForm {
                discharged_on: input::today().to_string(),
                reason: String::new(),
            };
            changes_again(&gateway, &call, &subject, error, &form, &discharge)
        }
    }
}

pub async fn discharge(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    Submitted(form): Submitted<DischargeForm>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let request = DischargeRequest {
        discharged_on: form.discharged_on.clone(),
        reason: form.reason.clone(),
    };
    match subjects::discharge(&gateway, &call, &subject, request).await {
        Ok(_) => Ok(see_other("/console/caseload")),
        Err(error) => {
            let withdraw = WithdrawForm {
                withdrawn_on: input::today().to_string(),
                evidence: String::new(),
            };
            changes_again(&gateway, &call, &subject, error, &withdraw, &form)
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    level: String,
    /// Blank: every party.
    #[serde(default)]
    agencies: Vec<String>,
    #[serde(default)]
    excluded_categories: Vec<String>,
    #[serde(default)]
    evidence: String,
    #[serde(default)]
    given_on: String,
    #[serde(default)]
    expires_on: String,
}

fn consent_form_page(
    viewer: &Viewer,
    token: &str,
    subject: &str,
    choices: &ConsentChoices,
    form: &ConsentForm,
    errors: &Errors,
) -> Markup {
    let level_error = errors.for_field("level");
    page(
        viewer,
        "Record consent",
        html! {
            (errors.summary())
            p { "Subject " code { (subject) } ". Recording consent adds a new version; earlier versions are kept." }
            form method="post" action=(subject_path(subject, "/consents")) {
                (page::form_token(token))
                fieldset id="f-level" class=(if level_error.is_some() { "invalid" } else { "" }) {
                    legend { "Consent level" }
                    @if let Some(error) = level_error { p class="error" { "Error: " (error) } }
                    @for level in ConsentLevel::ALL {
                        label class="choice" {
                            input type="radio" name="level" value=(level.as_str()) checked[form.level == level.as_str()];
                            " " (level.as_str())
                        }
                    }
                }
                fieldset id="f-agencies" class=(if errors.for_field("agencies").is_some() { "invalid" } else { "" }) {
                    legend { "Agencies the consent covers" }
                    p class="hint" { "Tick none to cover every party to the agreements." }
                    @if let Some(error) = errors.for_field("agencies") { p class="error" { "Error: " (error) } }
                    @for (id, name) in &choices.agencies {
                        label class="choice" {
                            input type="checkbox" name="agencies" value=(id) checked[form.agencies.contains(id)];
                            " " (name) " (" (id) ")"
                        }
                    }
                }
                fieldset id="f-excluded_categories" class=(if errors.for_field("excluded_categories").is_some() { "invalid" } else { "" }) {
                    legend { "Categories the person does not want shared" }
                    @if let Some(error) = errors.for_field("excluded_categories") { p class="error" { "Error: " (error) } }
                    @for category in &choices.categories {
                        label class="choice" {
                            input type="checkbox" name="excluded_categories" value=(category) checked[form.excluded_categories.contains(category)];
                            " " (category.replace('_', " "))
                        }
                    }
                }
                (Field::new("given_on", "Given on").kind("date").value(&form.given_on).required().error(errors).render())
                (Field::new("expires_on", "Expires on").kind("date").value(&form.expires_on).hint("Leave blank if it does not expire.").error(errors).render())
                (Field::new("evidence", "How consent was obtained").kind("textarea").value(&form.evidence).required()
                    .hint("Stored encrypted; shown only in the consent history.").error(errors).render())
                button type="submit" { "Record consent" }
            }
        },
    )
}

pub async fn consent_form(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let choices = consents::choices(&gateway, &call).await?;
    let form = ConsentForm {
        given_on: input::today().to_string(),
        ..ConsentForm::default()
    };
    Ok(ok(consent_form_page(
        &Viewer::of(&call),
        &form_token(&gateway, &call),
        subject.as_str(),
        &choices,
        &form,
        &Errors::none(),
    )))
}

pub async fn record_consent(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
    Submitted(form): Submitted<ConsentForm>,
) -> Result<HttpResponse, ApiError> {
    let subject = input::subject(&call, &subject)?;
    let outcome = match form.level.parse::<ConsentLevel>() {
        Ok(level) => {
            let request = ConsentRequest {
                level,
                agencies: (!form.agencies.is_empty()).then(|| form.agencies.clone()),
                excluded_categories: Some(form.excluded_categories.clone()),
                evidence: form.evidence.clone(),
                given_on: form.given_on.clone(),
                expires_on: given(&form.expires_on),
            };
            consents::record(&gateway, &call, &subject, request).await
        }
        Err(_) => Err(AppError::invalid("level", "choose a consent level")),
    };
    match outcome {
        Ok(_) => Ok(see_other(&subject_path(subject.as_str(), "/consents"))),
        Err(error @ AppError::Invalid { .. }) => {
            let choices = consents::choices(&gateway, &call).await?;
            form_again(error, |errors| {
                consent_form_page(
                    &Viewer::of(&call),
                    &form_token(&gateway, &call),
                    subject.as_str(),
                    &choices,
                    &form,
                    errors,
                )
            })
        }
        Err(error) => Err(error.into()),
    }
}
