//! Applies a [`TypeDecision`] to one record's data: what leaves is exactly the released
//! fields present in the record; every other present field is listed, by name and
//! category only, with the reason it was withheld.

use serde_json::{Map, Value};

use crate::{
    domain::record_type::RecordType,
    policy::{TypeDecision, WithheldReason},
};

#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub data: Map<String, Value>,
    /// `(field, category)` released.
    pub released: Vec<(String, String)>,
    /// `(field, category, reason)` withheld.
    pub withheld: Vec<(String, String, WithheldReason)>,
}

/// `None` when the decision omits the record altogether.
pub fn apply(decision: &TypeDecision, record_type: &RecordType, data: &Value) -> Option<Redacted> {
    let empty = Map::new();
    let fields = data.as_object().unwrap_or(&empty);
    let category = |field: &str| {
        record_type
            .fields
            .get(field)
            .map_or_else(|| "unknown".to_owned(), |spec| spec.category.clone())
    };
    let mut out = Redacted {
        data: Map::new(),
        released: Vec::new(),
        withheld: Vec::new(),
    };
    for (field, value) in fields {
        let verdict = match decision {
            TypeDecision::Omitted => return None,
            TypeDecision::Whole => Ok(()),
            TypeDecision::Fields {
                released, withheld, ..
            } => {
                if released.contains(field) {
                    Ok(())
                } else {
                    // A stored field the type no longer declares is withheld, never shown.
                    Err(withheld
                        .get(field)
                        .copied()
                        .unwrap_or(WithheldReason::Agreement))
                }
            }
        };
        match verdict {
            Ok(()) => {
                out.data.insert(field.clone(), value.clone());
                out.released.push((field.clone(), category(field)));
            }
            Err(reason) => out.withheld.push((field.clone(), category(field), reason)),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::domain::record_type::RecordTypes;

    fn plan() -> RecordType {
        RecordTypes::from_toml(include_str!("../config/record-types.toml"), "t")
            .unwrap()
            .get("health.crisis_plan")
            .unwrap()
            .clone()
    }

    #[test]
    fn only_released_fields_leave_and_the_rest_are_named_with_reasons() {
        let decision = TypeDecision::Fields {
            released: ["updated_on", "triggers"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            withheld: [("diagnosis".to_owned(), WithheldReason::Consent)]
                .into_iter()
                .collect(),
            agreements: BTreeSet::new(),
            released_by: None,
        };
        let data = json!({"updated_on": "2026-03-01", "triggers": "crowds", "diagnosis": "secret"});
        let redacted = apply(&decision, &plan(), &data).unwrap();
        assert_eq!(
            Value::Object(redacted.data),
            json!({"updated_on": "2026-03-01", "triggers": "crowds"})
        );
        assert_eq!(
            redacted.withheld,
            vec![(
                "diagnosis".to_owned(),
                "clinical".to_owned(),
                WithheldReason::Consent
            )]
        );
    }

    #[test]
    fn omitted_records_yield_nothing_and_holders_everything() {
        let data = json!({"updated_on": "2026-03-01", "diagnosis": "x"});
        assert!(apply(&TypeDecision::Omitted, &plan(), &data).is_none());
        assert_eq!(
            Value::Object(apply(&TypeDecision::Whole, &plan(), &data).unwrap().data),
            data
        );
    }

    proptest! {
        #[test]
        fn redaction_never_releases_a_field_the_decision_does_not(
            released in proptest::collection::btree_set(prop_oneof![
                Just("updated_on"), Just("triggers"), Just("what_helps"), Just("who_to_contact"),
                Just("risk_summary"), Just("diagnosis"), Just("medication")], 0..7),
            present in proptest::collection::btree_set(prop_oneof![
                Just("updated_on"), Just("triggers"), Just("what_helps"), Just("who_to_contact"),
                Just("risk_summary"), Just("diagnosis"), Just("medication"), Just("retired_field")], 0..8),
        ) {
            let decision = TypeDecision::Fields {
                released: released.iter().map(|s| (*s).to_owned()).collect(),
                withheld: BTreeMap::new(),
                agreements: BTreeSet::new(),
                released_by: None,
            };
            let data: Map<String, Value> = present.iter().map(|f| ((*f).to_owned(), json!("value"))).collect();
            let redacted = apply(&decision, &plan(), &Value::Object(data)).unwrap();
            for field in redacted.data.keys() {
                prop_assert!(released.contains(field.as_str()), "{} leaked", field);
            }
            prop_assert_eq!(redacted.data.len() + redacted.withheld.len(), present.len());
        }
    }
}
