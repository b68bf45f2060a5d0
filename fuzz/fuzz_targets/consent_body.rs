//! The bodies of `POST /v1/subjects/{id}/consents` (`app::consents::ConsentRequest`) and
//! `POST /v1/subjects/{id}/consents/withdraw` (`WithdrawRequest`) through the checks
//! `app::consents::record` and `withdraw` make before the database (`parse_text`,
//! `parse_date`, `check_given`/`check_withdrawn`, `excluded_categories` against the shipped
//! record types, agency ids against the development agencies), then the consent they
//! record evaluated by `effective_at` and `review_due`.
//!
//! Holds: evidence is trimmed, bounded and free of control characters; accepted dates have
//! four-digit years (as storage needs); a consent given today or earlier is in force with
//! exactly what was sent unless it has expired, and its review falls due no later than
//! its expiry or a year after it was given; a withdrawal after it leaves level `none`.

#![no_main]

mod common;

use std::collections::BTreeSet;

use concordat::{
    app::{
        consents::{ConsentRequest, WithdrawRequest},
        input::{parse_date, parse_text, today},
    },
    domain::{
        consent::{
            check_given, check_withdrawn, effective_at, excluded_categories, review_due,
            ConsentKind, ConsentLevel, ConsentVersion,
        },
        is_forbidden_in_text, AgencyId, Timestamp,
    },
};
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};

/// `app::consents::MAX_EVIDENCE` (private there).
const MAX_EVIDENCE: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<ConsentRequest>(data) {
        given(request);
    }
    if let Ok(request) = serde_json::from_slice::<WithdrawRequest>(data) {
        withdrawn(request);
    }
});

fn check_evidence(raw: &str) -> Option<String> {
    let evidence = parse_text("evidence", raw, MAX_EVIDENCE).ok()?;
    assert_eq!(evidence, raw.trim());
    assert!((1..=MAX_EVIDENCE).contains(&evidence.chars().count()));
    assert!(!evidence.chars().any(is_forbidden_in_text));
    Some(evidence)
}

fn given(request: ConsentRequest) {
    let Some(_evidence) = check_evidence(&request.evidence) else {
        return;
    };
    let Ok(given_on) = parse_date("given_on", &request.given_on) else {
        return;
    };
    let Ok(expires_on) = request
        .expires_on
        .as_deref()
        .map(|raw| parse_date("expires_on", raw))
        .transpose()
    else {
        return;
    };
    let today = today();
    if check_given(given_on, expires_on, today).is_err() {
        return;
    }
    common::assert_four_digit_year("given_on", &request.given_on, given_on);
    if let (Some(raw), Some(date)) = (&request.expires_on, expires_on) {
        common::assert_four_digit_year("expires_on", raw, date);
    }
    let Ok(excluded) = excluded_categories(
        request.excluded_categories.clone().unwrap_or_default(),
        common::record_types(),
    ) else {
        return;
    };
    assert!(excluded
        .iter()
        .all(|c| common::record_types().has_category(c)));
    let agencies = match &request.agencies {
        None => None,
        Some(list) => {
            let Ok(ids) = list
                .iter()
                .map(|raw| AgencyId::parse(raw))
                .collect::<Result<BTreeSet<_>, _>>()
            else {
                return;
            };
            if !ids.iter().all(|id| common::agencies().contains_key(id)) {
                return;
            }
            Some(ids)
        }
    };
    let recorded_at = Timestamp::now();
    let version = ConsentVersion {
        version: 1,
        kind: ConsentKind::Given {
            level: request.level,
            agencies: agencies.clone(),
            excluded_categories: excluded.clone(),
            given_on,
            expires_on,
        },
        recorded_at,
        recorded_by: "fuzz".into(),
    };
    let now = OffsetDateTime::now_utc();
    let history = [version];
    let effective = effective_at(&history, now);
    assert_eq!(effective.version, Some(1));
    let expired = expires_on.is_some_and(|expires| expires < now.date());
    if expired {
        assert_eq!(effective.level, ConsentLevel::None);
    } else {
        assert_eq!(effective.level, request.level);
        assert_eq!(effective.agencies, agencies);
        assert_eq!(effective.excluded_categories, excluded);
        for agency in common::agencies().keys() {
            assert_eq!(
                effective.covers(agency),
                agencies.as_ref().is_none_or(|a| a.contains(agency))
            );
        }
    }
    match review_due(&history, now) {
        Some(due) => {
            assert!(!expired && request.level != ConsentLevel::None);
            assert!(due > given_on);
            assert!(due <= given_on + Duration::days(366));
            assert!(expires_on.is_none_or(|expires| due <= expires));
        }
        None => assert!(expired || request.level == ConsentLevel::None),
    }

    // A withdrawal recorded after it, dated today, ends it.
    let withdrawal = ConsentVersion {
        version: 2,
        kind: ConsentKind::Withdrawn {
            withdrawn_on: today,
        },
        recorded_at,
        recorded_by: "fuzz".into(),
    };
    let [given] = history;
    let history = [given, withdrawal];
    let effective = effective_at(&history, now);
    assert_eq!(effective.level, ConsentLevel::None);
    assert_eq!(effective.version, Some(2));
    assert_eq!(review_due(&history, now), None);
}

fn withdrawn(request: WithdrawRequest) {
    let Some(_evidence) = check_evidence(&request.evidence) else {
        return;
    };
    let Ok(withdrawn_on) = parse_date("withdrawn_on", &request.withdrawn_on) else {
        return;
    };
    if check_withdrawn(withdrawn_on, today()).is_err() {
        return;
    }
    common::assert_four_digit_year("withdrawn_on", &request.withdrawn_on, withdrawn_on);
}
