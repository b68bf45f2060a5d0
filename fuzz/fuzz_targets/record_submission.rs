//! The body of `POST /v1/subjects/{id}/records` (`app::records::SubmitRecord`): its
//! `occurred_at` instant and its `data`, validated against every record type of the
//! repository's `config/record-types.toml` (the type it names first, as the API does).
//!
//! Holds: an accepted instant renders back to the same microsecond; accepted data holds
//! only declared fields, of their declared types, with every required one present, and
//! each has its declared category; a refusal names `data` or `data.<field name>` and
//! never echoes a key that is not shaped like a field name; validation depends only on
//! the JSON value, so re-serialised data gets the same verdict.

#![no_main]

mod common;

use concordat::{
    app::records::SubmitRecord,
    domain::{record_type::RecordType, Timestamp},
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<SubmitRecord>(data) else {
        return;
    };
    if let Some(at) =
        Timestamp::parse_rfc3339(&body.occurred_at).filter(|_| !common::known("render"))
    {
        let rendered = at.to_rfc3339();
        assert_eq!(
            Timestamp::parse_rfc3339(&rendered),
            Some(at),
            "occurred_at {:?} was accepted as {} µs but renders as {rendered:?}",
            body.occurred_at,
            at.micros()
        );
    }
    let types = common::record_types();
    let named = types.get(&body.record_type);
    for record_type in named
        .into_iter()
        .chain(types.names().filter_map(|name| types.get(name)))
    {
        check(record_type, &body.data);
    }
});

fn field_shaped(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

fn check(record_type: &RecordType, data: &Value) {
    let verdict = record_type.validate(data);
    let reread: Value = serde_json::from_str(&data.to_string()).expect("JSON reads back");
    assert_eq!(record_type.validate(&reread), verdict, "re-serialised data");
    match verdict {
        Ok(()) => {
            let object = data.as_object().expect("accepted data is an object");
            for (name, spec) in &record_type.fields {
                assert!(
                    !spec.required || object.contains_key(name),
                    "{name} missing"
                );
            }
            assert!(object.values().all(|v| !v.is_null()), "null accepted");
            let categories: Vec<_> = record_type.categories_of(object).collect();
            assert_eq!(categories.len(), object.len());
            for (name, category) in categories {
                let spec = &record_type.fields[name];
                assert_eq!(spec.category, category);
                assert!(common::record_types().has_category(category));
            }
        }
        Err(problem) => {
            assert!(!problem.message.is_empty());
            if problem.field != "data" {
                let name = problem
                    .field
                    .strip_prefix("data.")
                    .unwrap_or_else(|| panic!("refusal names {:?}", problem.field));
                assert!(field_shaped(name), "refusal echoes {name:?}");
            }
        }
    }
}
