//! Development mode: everything a developer needs to call the gateway on a fresh clone.
//! Creates the dev PKI next to `tls.client_ca` if it is missing, migrates (SQLite only), and
//! registers the sample agencies, one principal per role with client certificates, and a few
//! synthetic subjects with varied consent. Idempotent: what exists is kept. Never enabled
//! outside the shipped development configuration.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::SecretString;

use crate::{
    config::{DatabaseUrl, Settings},
    crypto::Keyring,
    db::{
        agencies, principals, records,
        subjects::{self, Identifier},
        Database,
    },
    domain::{
        consent::{ConsentKind, ConsentLevel},
        record::RecordId,
        subject::{Enrolment, NhsNumber, PersonName, PncId, SubjectId},
        Agency, AgencyId, AgencyKind, Principal, PrincipalId, PrincipalStatus, Role,
    },
    pki::PkiDirectory,
    tls,
};

pub const SAMPLE_AGENCIES: [(&str, AgencyKind, &str); 4] = [
    (
        "hampshire-police",
        AgencyKind::Police,
        "Hampshire and Isle of Wight Constabulary",
    ),
    ("iow-nhs", AgencyKind::Health, "Isle of Wight NHS Trust"),
    (
        "scas",
        AgencyKind::Ambulance,
        "South Central Ambulance Service",
    ),
    (
        "iow-recovery",
        AgencyKind::Programme,
        "Isle of Wight Integrated Recovery Programme",
    ),
];

/// One principal per role: (principal and certificate name, agency, role).
pub const SAMPLE_PRINCIPALS: [(&str, &str, Role); 6] = [
    ("police-mentor", "hampshire-police", Role::Practitioner),
    ("scas-dispatch", "scas", Role::System),
    ("programme-coordinator", "iow-recovery", Role::Coordinator),
    ("nhs-ig-lead", "iow-nhs", Role::IgLead),
    ("ig-auditor", "iow-recovery", Role::IgAuditor),
    ("gateway-admin", "iow-recovery", Role::Admin),
];

/// The password of every sample principal's `.p12` file, fixed and documented so that a
/// developer can import one into a browser on a fresh clone. Development only: it protects
/// nothing, as does everything else in the development PKI.
pub const PKCS12_PASSWORD: &str = "concordat-dev";

/// The development PKI directory: where `tls.client_ca` lives.
pub fn pki_directory(settings: &Settings) -> PkiDirectory {
    PkiDirectory::new(
        settings
            .tls
            .client_ca
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
}

/// Prepares PKI, database and samples. Blocking: call it off the async executor.
pub fn prepare(settings: &Settings) -> anyhow::Result<()> {
    let pki = pki_directory(settings);
    if !pki.exists() {
        pki.init().context("creating the development PKI")?;
        tracing::warn!(dir = %pki.ca_certificate().display(), "created development PKI");
    }
    for (path, key) in [
        (&settings.tls.cert, "tls.cert"),
        (&settings.tls.key, "tls.key"),
        (&settings.tls.crl, "tls.crl"),
    ] {
        if !path.exists() {
            bail!(
                "{key}: {} is missing; dev mode expects the files of `concordat certs init`",
                path.display()
            );
        }
    }

    let database = Database::connect(&settings.database.url).context("database.url")?;
    // One command on a fresh clone: development mode migrates its own SQLite file. On
    // PostgreSQL the gateway's role may not, so the schema must be migrated already.
    if matches!(settings.database.url, DatabaseUrl::Sqlite(_)) {
        database.migrate()?;
    } else {
        database.require_current_schema()?;
    }
    for (id, kind, name) in SAMPLE_AGENCIES {
        let agency = Agency::new(AgencyId::parse(id)?, kind, name)?;
        database.run_blocking(|conn| match agencies::find(conn, &agency.id)? {
            Some(_) => Ok(()),
            None => agencies::insert(conn, &agency),
        })?;
    }
    for (name, agency, role) in SAMPLE_PRINCIPALS {
        let agency = AgencyId::parse(agency)?;
        let certificate = client_files(&pki, name, &agency)?;
        let chain = tls::read_certificates(&certificate)?;
        let first = chain.first().context("client certificate file is empty")?;
        let (subject, issuer, _, _) = tls::describe(first)?;
        let issuer_key = super::principals::issuing_ca_key(settings, first)?;
        let principal = Principal {
            id: PrincipalId::parse(name)?,
            version: 1,
            agency,
            roles: [role].into_iter().collect(),
            certificate: crate::domain::CertificateBinding {
                subject,
                issuer,
                issuer_key: Some(issuer_key),
            },
            status: PrincipalStatus::Active,
        };
        database.run_blocking(|conn| match principals::latest(conn, &principal.id)? {
            Some(_) => Ok(()),
            None => principals::add(conn, &principal),
        })?;
    }
    let in_use = database.run_blocking(crate::db::keys_in_use)?;
    let keys = crate::app::data_keys(&settings.keys.dir, in_use)?;
    enrol_samples(&database, &keys)?;
    Ok(())
}

/// Issues `name`'s certificate, key and `.p12` if missing, or only the `.p12` when the
/// certificate was issued before there were any (an older clone). Returns the certificate.
fn client_files(pki: &PkiDirectory, name: &str, agency: &AgencyId) -> anyhow::Result<PathBuf> {
    let password = SecretString::from(PKCS12_PASSWORD.to_owned());
    let certificate = pki.client_certificate(name);
    if !certificate.exists() {
        pki.issue_client(name, agency, 365, &password)?;
    } else if !pki.client_pkcs12(name).exists() {
        pki.write_client_pkcs12(name, &password)?;
    }
    Ok(certificate)
}

/// Synthetic subjects: clearly fictional names, NHS numbers from the 999 test range with
/// valid check digits, and varied consent. (given, family, NHS number, PNC id, consent).
const SAMPLE_SUBJECTS: [(&str, &str, &str, Option<&str>, SampleConsent); 5] = [
    (
        "Alex",
        "Fictional-Testperson",
        "9990000018",
        None,
        SampleConsent::Level(ConsentLevel::Full),
    ),
    (
        "Sam",
        "Fictional-Example",
        "9990000026",
        Some("19/0001234E"),
        SampleConsent::Level(ConsentLevel::Crisis),
    ),
    (
        "Jo",
        "Fictional-Sample",
        "9990000034",
        None,
        SampleConsent::CoordinationExceptClinical,
    ),
    (
        "Charlie",
        "Fictional-Placeholder",
        "9990000042",
        None,
        SampleConsent::NoneRecorded,
    ),
    (
        "Riley",
        "Fictional-Dummy",
        "9990000050",
        Some("21/0045678U"),
        SampleConsent::Withdrawn,
    ),
];

#[derive(Clone, Copy)]
enum SampleConsent {
    Level(ConsentLevel),
    CoordinationExceptClinical,
    NoneRecorded,
    Withdrawn,
}

/// Enrols the synthetic subjects once (the first one's NHS number marks it done).
fn enrol_samples(database: &Database, keys: &Keyring) -> anyhow::Result<()> {
    let marker = NhsNumber::parse(SAMPLE_SUBJECTS[0].2)?;
    if database
        .run_blocking(|conn| subjects::find_by_identifier(conn, keys, Identifier::Nhs(&marker)))?
        .is_some()
    {
        return Ok(());
    }
    let today = time::OffsetDateTime::now_utc().date();
    let enrolled_on = today - time::Duration::days(400);
    for (index, (given, family, nhs, pnc, consent)) in SAMPLE_SUBJECTS.into_iter().enumerate() {
        let enrolment = Enrolment::new(
            Some(NhsNumber::parse(nhs)?),
            pnc.map(PncId::parse).transpose()?,
            PersonName::parse("given_name", given)?,
            PersonName::parse("family_name", family)?,
            time::Date::from_calendar_date(1980 + index as i32 * 3, time::Month::March, 14)?,
            enrolled_on,
            today,
        )?;
        let id = SubjectId::generate();
        database.run_blocking(|conn| subjects::enrol(conn, keys, &id, &enrolment, "dev-mode"))?;
        let given_kind = |level, excluded: &[&str]| ConsentKind::Given {
            level,
            agencies: None,
            excluded_categories: excluded.iter().map(|c| (*c).to_owned()).collect(),
            given_on: enrolled_on,
            expires_on: None,
        };
        let versions = match consent {
            SampleConsent::Level(level) => vec![given_kind(level, &[])],
            SampleConsent::CoordinationExceptClinical => {
                vec![given_kind(ConsentLevel::Coordination, &["clinical"])]
            }
            SampleConsent::NoneRecorded => vec![],
            SampleConsent::Withdrawn => vec![
                given_kind(ConsentLevel::Full, &[]),
                ConsentKind::Withdrawn {
                    withdrawn_on: today,
                },
            ],
        };
        for (version, kind) in (1..).zip(versions) {
            database.run_blocking(|conn| {
                subjects::record_consent(
                    conn,
                    keys,
                    &id,
                    version,
                    &kind,
                    "Synthetic development data.",
                    "dev-mode",
                )
            })?;
        }
    }
    Ok(())
}

/// Imports every agreement file in `policy.agreements` (audited, as the CLI does) and
/// gives each synthetic subject a few records from each agency, once.
pub async fn share_samples(settings: &Settings) -> anyhow::Result<()> {
    let (url, dir, keys_dir) = (
        settings.database.url.clone(),
        settings.policy.agreements.clone(),
        settings.keys.dir.clone(),
    );
    let (database, keys, files) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let database = Database::connect(&url).context("database.url")?;
        let keys =
            crate::app::data_keys(&keys_dir, database.run_blocking(crate::db::keys_in_use)?)?;
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("policy.agreements: cannot read {}", dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        Ok((database, keys, files))
    })
    .await??;
    let operator = super::Operator::open_as(settings, "dev-mode").await?;
    let gateway = operator.gateway(settings).await?;
    let imported = super::agreements::import_files(&operator, &gateway, &files).await;
    drop(gateway);
    operator.close().await?;
    imported?;
    tokio::task::spawn_blocking(move || submit_sample_records(&database, &keys)).await?
}

/// (holder, type, occurred, data) for every synthetic subject.
fn sample_records() -> Vec<(&'static str, &'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "iow-nhs",
            "health.crisis_plan",
            "2026-02-01T10:00:00Z",
            json!({
            "updated_on": "2026-02-01", "triggers": "Anniversaries; being alone at night",
            "what_helps": "A quiet room and a named mentor", "who_to_contact": "Sister (synthetic)",
            "risk_summary": "Self-harm when alone", "diagnosis": "Synthetic diagnosis text",
            "medication": "Synthetic medication"}),
        ),
        (
            "iow-nhs",
            "health.ae_attendance",
            "2026-02-10T02:30:00Z",
            json!({
            "arrived_at": "2026-02-10T02:30:00Z", "presenting_complaint": "Synthetic complaint",
            "discharge_outcome": "Discharged to mentor", "self_harm": true}),
        ),
        (
            "hampshire-police",
            "police.s136_detention",
            "2026-01-20T23:10:00Z",
            json!({
            "detained_at": "2026-01-20T23:10:00Z", "location": "Synthetic bridge",
            "place_of_safety": "Hospital", "grounds": "Synthetic grounds"}),
        ),
        (
            "hampshire-police",
            "police.incident",
            "2026-03-05T21:00:00Z",
            json!({
            "reported_at": "2026-03-05T21:00:00Z", "incident_type": "welfare check",
            "summary": "Synthetic summary", "risk_markers": ["self_harm"]}),
        ),
        // Before enrolment (about 400 days ago): the service use the programme set out to reduce.
        (
            "hampshire-police",
            "police.s136_detention",
            "2025-05-10T22:40:00Z",
            json!({"detained_at": "2025-05-10T22:40:00Z", "location": "Synthetic car park", "place_of_safety": "Custody"}),
        ),
        (
            "hampshire-police",
            "emergency.call_999",
            "2025-06-01T03:15:00Z",
            json!({"called_at": "2025-06-01T03:15:00Z", "service_requested": "police"}),
        ),
        (
            "scas",
            "ambulance.callout",
            "2026-02-10T01:50:00Z",
            json!({
            "attended_at": "2026-02-10T01:50:00Z", "conveyed_to": "St Mary's",
            "clinical_impression": "Synthetic impression"}),
        ),
    ]
}

fn submit_sample_records(database: &Database, keys: &Keyring) -> anyhow::Result<()> {
    for (_, _, nhs, _, _) in SAMPLE_SUBJECTS {
        let nhs = NhsNumber::parse(nhs)?;
        let Some(subject) = database
            .run_blocking(|conn| subjects::find_by_identifier(conn, keys, Identifier::Nhs(&nhs)))?
        else {
            continue;
        };
        if database.run_blocking(|conn| records::any_for_subject(conn, &subject))? {
            continue;
        }
        for (holder, record_type, occurred, data) in sample_records() {
            let occurred = time::OffsetDateTime::parse(
                occurred,
                &time::format_description::well_known::Rfc3339,
            )?;
            let record = records::Record {
                id: RecordId::generate(),
                subject: subject.clone(),
                record_type: record_type.to_owned(),
                holder: AgencyId::parse(holder)?,
                occurred_at: crate::domain::Timestamp::from(occurred),
                data,
            };
            let sealed = records::seal(keys, &record, "dev-mode")?;
            database.run_blocking(|conn| records::insert(conn, &sealed))?;
        }
    }
    Ok(())
}

/// A command that calls the running gateway as the sample police mentor.
pub fn curl_example(settings: &Settings, port: u16) -> String {
    let pki = pki_directory(settings);
    format!(
        "curl --cacert {} --cert {} --key {} https://localhost:{port}/v1/whoami",
        pki.ca_certificate().display(),
        pki.client_certificate("police-mentor").display(),
        pki.client_key("police-mentor").display(),
    )
}

/// Where to open the console in a browser, and what to import first.
pub fn console_hint(settings: &Settings, port: u16) -> String {
    let pki = pki_directory(settings);
    format!(
        "Console: https://localhost:{port}/console (import {}, password {PKCS12_PASSWORD}, \
         into your browser; trust {})",
        pki.client_pkcs12("<principal>").display(),
        pki.ca_certificate().display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_files_issue_once_and_add_a_missing_p12_to_an_older_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("scas").unwrap();
        let certificate = client_files(&pki, "scas-dispatch", &agency).unwrap();
        let pem = std::fs::read(&certificate).unwrap();
        let p12 = pki.client_pkcs12("scas-dispatch");
        let first = std::fs::read(&p12).unwrap();

        client_files(&pki, "scas-dispatch", &agency).unwrap();
        assert_eq!(std::fs::read(&p12).unwrap(), first, "kept as it was");

        std::fs::remove_file(&p12).unwrap();
        client_files(&pki, "scas-dispatch", &agency).unwrap();
        assert_eq!(std::fs::read(&certificate).unwrap(), pem, "not reissued");
        let store = p12_keystore::KeyStore::from_pkcs12(
            &std::fs::read(&p12).unwrap(),
            PKCS12_PASSWORD,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        assert_eq!(
            chain.certs().first().unwrap().subject(),
            "CN=scas-dispatch, O=scas"
        );
    }
}
