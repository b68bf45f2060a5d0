//! Applies a [`TypeDecision`] to one record's data: what leaves is exactly the released
//! fields present in the record; every other present field is listed, by name and
//! category only, with the reason it was withheld. This is the one place that says what
//! was withheld, for a record left out altogether as for one partly released.

use serde_json::{Map, Value};

use crate::{
    domain::record_type::RecordType,
    policy::{TypeDecision, WithheldReason},
};

#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    /// The released fields with their values; `None` when the decision leaves the record
    /// out of the response altogether.
    pub data: Option<Map<String, Value>>,
    /// `(field, category)` released.
    pub released: Vec<(String, String)>,
    /// `(field, category, reason)` withheld: every present field not released.
    pub withheld: Vec<(String, String, WithheldReason)>,
}

pub fn apply(decision: &TypeDecision, record_type: &RecordType, data: &Value) -> Redacted {
    let empty = Map::new();
    let fields = data.as_object().unwrap_or(&empty);
    let category = |field: &str| {
        record_type
            .fields
            .get(field)
            .map_or_else(|| "unknown".to_owned(), |spec| spec.category.clone())
    };
    let mut data = Map::new();
    let mut released = Vec::new();
    let mut withheld = Vec::new();
    for (field, value) in fields {
        let withheld_for = match decision {
            // No share covers the type at all.
            TypeDecision::Omitted => Some(WithheldReason::Agreement),
            TypeDecision::Whole => None,
            TypeDecision::Fields {
                released, withheld, ..
            } => (!released.contains(field)).then(|| {
                // A stored field the type no longer declares is withheld, never shown.
                withheld
                    .get(field)
                    .copied()
                    .unwrap_or(WithheldReason::Agreement)
            }),
        };
        match withheld_for {
            None => {
                data.insert(field.clone(), value.clone());
                released.push((field.clone(), category(field)));
            }
            Some(reason) => withheld.push((field.clone(), category(field), reason)),
        }
    }
    Redacted {
        data: (*decision != TypeDecision::Omitted).then_some(data),
        released,
        withheld,
    }
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

    fn field(name: &str, category: &str) -> (String, String) {
        (name.to_owned(), category.to_owned())
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
        let redacted = apply(&decision, &plan(), &data);
        assert_eq!(
            redacted.data.map(Value::Object),
            Some(json!({"updated_on": "2026-03-01", "triggers": "crowds"}))
        );
        assert_eq!(
            redacted.released,
            [
                field("triggers", "crisis_plan"),
                field("updated_on", "crisis_plan")
            ]
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
    fn omitted_records_yield_nothing_but_say_what_they_withheld() {
        let data = json!({"updated_on": "2026-03-01", "diagnosis": "x", "retired_field": "y"});
        let omitted = apply(&TypeDecision::Omitted, &plan(), &data);
        assert_eq!(omitted.data, None);
        assert!(omitted.released.is_empty());
        assert_eq!(
            omitted.withheld,
            [
                ("diagnosis", "clinical"),
                ("retired_field", "unknown"),
                ("updated_on", "crisis_plan")
            ]
            .map(|(name, category)| (
                name.to_owned(),
                category.to_owned(),
                WithheldReason::Agreement
            ))
        );
    }

    #[test]
    fn holders_get_everything() {
        let data = json!({"updated_on": "2026-03-01", "diagnosis": "x"});
        let whole = apply(&TypeDecision::Whole, &plan(), &data);
        assert_eq!(whole.data.map(Value::Object), Some(data));
        assert_eq!(
            whole.released,
            [
                field("diagnosis", "clinical"),
                field("updated_on", "crisis_plan")
            ]
        );
        assert!(whole.withheld.is_empty());
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
            let redacted = apply(&decision, &plan(), &Value::Object(data));
            let leaving = redacted.data.unwrap_or_default();
            for field in leaving.keys() {
                prop_assert!(released.contains(field.as_str()), "{} leaked", field);
            }
            prop_assert_eq!(leaving.len(), redacted.released.len());
            prop_assert_eq!(leaving.len() + redacted.withheld.len(), present.len());
        }
    }
}
