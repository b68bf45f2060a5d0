//! Agreements through the API: drafted, approved by every party, in force on the next
//! request, suspended; through the CLI: imported (audited) and listed; and the governance
//! rule asked again under the agreement lock, answering as the early check does.

use concordat::{
    audit::Decision,
    domain::{agreement::AgreementDocument, Role},
};
use serde_json::{json, Value};

use crate::helpers::{problem, receipt, spawn_app, BINARY};

fn example() -> Value {
    let document: AgreementDocument = toml::from_str(include_str!(
        "../../config/agreements/isa-iow-recovery.toml"
    ))
    .unwrap();
    serde_json::to_value(document).unwrap()
}

#[tokio::test]
async fn a_draft_becomes_active_only_when_every_party_approves() {
    let app = spawn_app().await;
    let parties = ["hampshire-police", "iow-nhs", "scas", "iow-recovery"];
    let mut leads = Vec::new();
    for party in parties {
        leads.push(
            app.client(
                &app.register(&format!("{party}-ig"), party, &[Role::IgLead])
                    .await,
            ),
        );
    }
    let admin = app.client(
        &app.register("gateway-admin", "iow-recovery", &[Role::Admin])
            .await,
    );
    let auditor = app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let police = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );

    let created = admin
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["status"], "draft");
    let again = admin
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    let status = |client: &reqwest::Client| {
        let request = client
            .get(app.url("/v1/agreements/isa-iow-recovery"))
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap()["status"].clone() }
    };
    // A practitioner of a party may read it.
    assert_eq!(status(&police).await, "draft");
    for (i, lead) in leads.iter().enumerate() {
        let approved = lead
            .post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), 200, "{}", parties[i]);
        let expected = if i + 1 == parties.len() {
            "active"
        } else {
            "draft"
        };
        assert_eq!(status(&auditor).await, expected, "after {}", parties[i]);
    }
    let twice = leads[0]
        .post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 409);

    let suspended = leads[1]
        .post(app.url("/v1/agreements/isa-iow-recovery/suspend"))
        .json(&json!({"reason": "Annual review found gaps"}))
        .send()
        .await
        .unwrap();
    assert_eq!(suspended.status(), 200);
    assert_eq!(status(&auditor).await, "suspended");
    let view: Value = app.get_json(&auditor, "/v1/agreements").await;
    let events: Vec<&str> = view["agreements"][0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["approved", "suspended"]);
}

#[tokio::test]
async fn invalid_documents_are_422_naming_the_share_and_key_and_roles_are_checked() {
    let app = spawn_app().await;
    let admin = app.client(
        &app.register("gateway-admin", "iow-recovery", &[Role::Admin])
            .await,
    );
    let mut bad = example();
    bad["shares"][1]["recipients"] = json!(["hampshire-police", "thames-valley"]);
    let response = admin
        .post(app.url("/v1/agreements"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(
        problem(response).await["errors"][0]["field"],
        "shares[1].recipients"
    );

    let practitioner = app.client(
        &app.register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
            .await,
    );
    let response = practitioner
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "role");

    admin
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    let admin_approves = admin
        .post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_approves.status(), 403);
    let outsider = app.client(&app.register("other-lead", "iow-nhs", &[Role::IgLead]).await);
    let unknown = outsider
        .get(app.url("/v1/agreements/no-such-isa"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_cli_imports_agreements_with_an_audit_entry_and_lists_them() {
    let app = spawn_app().await;
    let config = app.write_config();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/agreements/isa-iow-recovery.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(BINARY)
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("CONCORDAT_CONFIG")
            .output()
            .unwrap()
    };

    let imported = run(&["agreements", "import", file.to_str().unwrap()]);
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    assert!(String::from_utf8_lossy(&imported.stdout)
        .contains("isa-iow-recovery@1: imported, in force"));
    let entry = app
        .audit_entries()
        .await
        .into_iter()
        .find(|e| e.action == "agreement.import")
        .unwrap();
    assert_eq!(entry.agreements, ["isa-iow-recovery@1"]);

    let listed = run(&["agreements", "list"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("isa-iow-recovery") && l.contains("active") && l.contains("v1")),
        "{listing}"
    );

    let broken = app.dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        include_str!("../../config/agreements/isa-iow-recovery.toml").replace(
            "emergency_categories = [\"contact\"]",
            "emergency_categories = [\"notes\"]",
        ),
    )
    .unwrap();
    let refused = run(&["agreements", "import", broken.to_str().unwrap()]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("shares[3].emergency_categories"),
        "{message}"
    );
}

#[tokio::test]
async fn no_subset_of_parties_can_rewrite_or_take_over_an_agreement() {
    let app = spawn_app().await;
    let admin = app.client(
        &app.register("gateway-admin", "iow-recovery", &[Role::Admin])
            .await,
    );
    let mut leads = std::collections::BTreeMap::new();
    for party in ["hampshire-police", "iow-nhs", "scas", "iow-recovery"] {
        leads.insert(
            party,
            app.client(
                &app.register(&format!("{party}-ig"), party, &[Role::IgLead])
                    .await,
            ),
        );
    }
    admin
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    for lead in leads.values() {
        let approved = lead
            .post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), 200);
    }

    // Version 2 drops the police and the NHS: only the programme and the ambulance service.
    let mut narrower = example();
    narrower["version"] = json!(2);
    narrower["parties"] = json!(["iow-recovery", "scas"]);
    narrower["shares"] = json!([{
        "provider": "scas", "recipients": ["iow-recovery"], "purposes": ["care_coordination"],
        "record_types": ["ambulance.callout"], "categories": {"service_usage": "coordination"}
    }]);
    let drafted = leads["iow-recovery"]
        .post(app.url("/v1/agreements"))
        .json(&narrower)
        .send()
        .await
        .unwrap();
    assert_eq!(drafted.status(), 201);
    for party in ["iow-recovery", "scas"] {
        let approved = leads[party]
            .post(app.url("/v1/agreements/isa-iow-recovery/versions/2/approve"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            approved.json::<Value>().await.unwrap()["status"],
            "draft",
            "{party} alone cannot supersede"
        );
    }
    let view: Value = app
        .get_json(&admin, "/v1/agreements/isa-iow-recovery")
        .await;
    assert_eq!(view["in_force_version"], 1);

    // Re-approving an older version is refused: it must not undo a suspension.
    let old = leads["scas"]
        .post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 409);
}

/// The example narrowed to the programme and the ambulance service, as version `version`.
fn narrower(version: i32) -> Value {
    let mut document = example();
    document["version"] = json!(version);
    document["parties"] = json!(["iow-recovery", "scas"]);
    document["shares"] = json!([{
        "provider": "scas", "recipients": ["iow-recovery"], "purposes": ["care_coordination"],
        "record_types": ["ambulance.callout"], "categories": {"service_usage": "coordination"}
    }]);
    document
}

/// Version 1 with all four parties, then version 2 with only the programme and the
/// ambulance service, both imported: the police are no longer a governing party. Version 3
/// (the programme and the ambulance service again) is drafted by the programme's IG lead.
async fn police_no_longer_govern(app: &crate::helpers::TestApp) {
    for document in [example(), narrower(2)] {
        let document: AgreementDocument = serde_json::from_value(document).unwrap();
        app.database
            .run(move |conn| concordat::db::agreements::import(conn, &document, "test-admin"))
            .await
            .unwrap();
    }
    let programme = app.client(
        &app.register("iow-recovery-ig", "iow-recovery", &[Role::IgLead])
            .await,
    );
    let drafted = programme
        .post(app.url("/v1/agreements"))
        .json(&narrower(3))
        .send()
        .await
        .unwrap();
    assert_eq!(drafted.status(), 201);
}

#[tokio::test]
async fn a_non_party_ig_lead_cannot_approve() {
    let app = spawn_app().await;
    police_no_longer_govern(&app).await;
    let police = app.client(
        &app.register("hampshire-police-ig", "hampshire-police", &[Role::IgLead])
            .await,
    );
    let refused = police
        .post(app.url("/v1/agreements/isa-iow-recovery/versions/3/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await["code"], "role");
}

/// The party rule decided under the agreement lock (where a concurrent approval may have
/// changed who governs since the early answer) answers exactly as the early answer does:
/// 403 `role`, not a conflict.
#[tokio::test]
async fn the_party_rule_under_the_lock_answers_as_the_early_check_does() {
    use actix_web::ResponseError;
    use concordat::{
        app::AppError,
        db::agreements,
        domain::{
            agreement::{AgreementRef, GovernanceRefusal, Requester},
            AgencyId,
        },
        error::ApiError,
    };

    let app = spawn_app().await;
    police_no_longer_govern(&app).await;
    let police = Requester {
        agency: Some(AgencyId::parse("hampshire-police").unwrap()),
        roles: [Role::IgLead].into(),
    };
    let refusal = app
        .database
        .run(move |conn| {
            agreements::approve(
                conn,
                &AgreementRef::new("isa-iow-recovery", 3),
                &police,
                "police-ig",
            )
        })
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(refusal, GovernanceRefusal::NotApprovingParty);
    let error = ApiError::from(AppError::from(refusal));
    assert_eq!(
        (error.status_code().as_u16(), error.problem().code),
        (403, "role".to_owned())
    );
}

/// A second approval by the same agency is refused before anything is recorded as done:
/// its entry says denied, not granted.
#[tokio::test]
async fn a_repeated_approval_is_recorded_as_denied() {
    let app = spawn_app().await;
    let admin = app.client(
        &app.register("gateway-admin", "iow-recovery", &[Role::Admin])
            .await,
    );
    let lead = app.client(&app.register("scas-ig", "scas", &[Role::IgLead]).await);
    admin
        .post(app.url("/v1/agreements"))
        .json(&example())
        .send()
        .await
        .unwrap();
    let approve = || {
        lead.post(app.url("/v1/agreements/isa-iow-recovery/versions/1/approve"))
            .send()
    };
    assert_eq!(approve().await.unwrap().status(), 200);
    let twice = approve().await.unwrap();
    assert_eq!(twice.status(), 409);
    let leaf_index = receipt(&twice);
    let entry = app
        .audit_entries()
        .await
        .into_iter()
        .find(|e| e.leaf_index == leaf_index)
        .unwrap();
    assert_eq!(
        (entry.decision, entry.reason.as_str()),
        (Decision::Denied, "conflict")
    );
    assert_eq!(entry.agreements, ["isa-iow-recovery@1"]);
}

/// Drafting and suspending are decided again under the lock by the same rule: a party that
/// no longer governs is refused there too, with the early answer's 403, and nothing is
/// stored.
#[tokio::test]
async fn every_governed_write_is_decided_again_under_the_lock() {
    use actix_web::ResponseError;
    use concordat::{
        app::AppError,
        db::agreements,
        domain::{
            agreement::{GovernanceRefusal, Requester, StatusChange},
            AgencyId,
        },
        error::ApiError,
    };

    let app = spawn_app().await;
    police_no_longer_govern(&app).await;
    let police = Requester {
        agency: Some(AgencyId::parse("hampshire-police").unwrap()),
        roles: [Role::IgLead].into(),
    };
    let mut wider: AgreementDocument = serde_json::from_value(narrower(4)).unwrap();
    wider.parties.push("hampshire-police".into());
    let (drafted, suspended) = app
        .database
        .run(move |conn| {
            let drafted = agreements::insert_version(conn, &wider, &police, "police-ig")?;
            let suspended = agreements::change_status(
                conn,
                "isa-iow-recovery",
                StatusChange::Suspend,
                "Police say so",
                &police,
                "police-ig",
            )?;
            Ok((drafted, suspended))
        })
        .await
        .unwrap();
    assert_eq!(drafted, Err(GovernanceRefusal::NotDraftingParty));
    assert_eq!(suspended, Err(GovernanceRefusal::NotGoverningParty));
    for refusal in [drafted, suspended] {
        let error = ApiError::from(AppError::from(refusal.unwrap_err()));
        assert_eq!(
            (error.status_code().as_u16(), error.problem().code),
            (403, "role".to_owned())
        );
    }
    let stored = app
        .database
        .run(|conn| agreements::load(conn, "isa-iow-recovery"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.versions.len(), 3);
    assert!(stored.events.iter().all(|e| e.reason.is_none()));
}
