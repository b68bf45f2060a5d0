//! Record types, declared in configuration: which agency kinds may hold each, and for
//! every field its JSON type, whether it is required, and its category. Loading refuses an
//! unknown field type or category (naming type and field); submitted data is checked
//! against its type (naming the field).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    str::FromStr,
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::AgencyKind;

/// The built-in categories of information a field may hold. The record-types file may
/// declare more; consent may exclude any declared category, built in or not.
pub const KNOWN_CATEGORIES: [&str; 11] = [
    "identity",
    "contact",
    "risk",
    "crisis_plan",
    "care_plan",
    "service_usage",
    "clinical",
    "medication",
    "criminal_justice",
    "safeguarding",
    "notes",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    Datetime,
    StringList,
}

impl FieldType {
    const ALL: [Self; 7] = [
        Self::String,
        Self::Integer,
        Self::Number,
        Self::Boolean,
        Self::Date,
        Self::Datetime,
        Self::StringList,
    ];

    /// As the record-types file writes it.
    fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Datetime => "datetime",
            Self::StringList => "string[]",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == raw)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Number => "a number",
            Self::Boolean => "true or false",
            Self::Date => "a date, YYYY-MM-DD",
            Self::Datetime => "an RFC 3339 date and time",
            Self::StringList => "an array of strings",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Date => value
                .as_str()
                .is_some_and(|s| super::timestamp::calendar_date(s).is_some()),
            Self::Datetime => value
                .as_str()
                .is_some_and(|s| OffsetDateTime::parse(s, &Rfc3339).is_ok()),
            Self::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub field_type: FieldType,
    pub category: String,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordType {
    pub name: String,
    pub holders: BTreeSet<AgencyKind>,
    pub fields: BTreeMap<String, FieldSpec>,
}

/// A problem with one field of submitted data, named as `data.<field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl RecordType {
    /// Checks `data` against this type: no unknown fields, every required field present,
    /// every value of its declared JSON type. Nulls are not values.
    pub fn validate(&self, data: &Value) -> Result<(), FieldProblem> {
        let problem = |field: &str, message: String| FieldProblem {
            field: format!("data.{field}"),
            message,
        };
        let Some(object) = data.as_object() else {
            return Err(FieldProblem {
                field: "data".into(),
                message: "must be an object".into(),
            });
        };
        for (name, value) in object {
            let spec = self.fields.get(name).ok_or_else(|| {
                // Echo a key only if it looks like a field name: a key may be anything the
                // caller typed, an identifier included.
                if valid_name(name) {
                    problem(name, format!("is not a field of {}", self.name))
                } else {
                    FieldProblem {
                        field: "data".into(),
                        message: format!("holds a key that is not a field of {}", self.name),
                    }
                }
            })?;
            if !spec.field_type.accepts(value) {
                return Err(problem(
                    name,
                    format!("must be {}", spec.field_type.describe()),
                ));
            }
        }
        for (name, spec) in &self.fields {
            if spec.required && !object.contains_key(name) {
                return Err(problem(name, "is required".into()));
            }
        }
        Ok(())
    }

    /// The category of every field present in `data`.
    pub fn categories_of<'a>(
        &'a self,
        data: &'a Map<String, Value>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        data.keys().filter_map(|name| {
            self.fields
                .get(name)
                .map(|spec| (name.as_str(), spec.category.as_str()))
        })
    }
}

/// Every record type the gateway knows, and the categories they may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordTypes {
    types: BTreeMap<String, RecordType>,
    categories: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordTypeError(pub String);

impl fmt::Display for RecordTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecordTypeError {}

/// The file's shape; also, in JSON, the stored definitions ([`RecordTypes::definition`]).
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// Categories beyond the built-in ones (the stored definitions list the built-in ones
    /// too).
    #[serde(default)]
    categories: Vec<String>,
    types: BTreeMap<String, RawType>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    holders: Vec<String>,
    fields: BTreeMap<String, RawField>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type", default = "string_type")]
    field_type: String,
    category: String,
    #[serde(default)]
    required: bool,
}

fn string_type() -> String {
    "string".into()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

impl RecordTypes {
    /// Parses the record-types file; `source` names it in errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, RecordTypeError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| RecordTypeError(format!("{source}: {e}")))?;
        Self::from_raw(raw, source)
    }

    /// Parses a definition [`RecordTypes::definition`] wrote; `source` names it in errors.
    pub fn from_definition(json: &str, source: &str) -> Result<Self, RecordTypeError> {
        let raw: RawFile =
            serde_json::from_str(json).map_err(|e| RecordTypeError(format!("{source}: {e}")))?;
        Self::from_raw(raw, source)
    }

    /// Every type and category as one canonical JSON text (names sorted, defaults written
    /// out, comments and layout dropped): two files that define the same types give the
    /// same text, so a stored catalogue version changes only when a definition does.
    pub fn definition(&self) -> Result<String, RecordTypeError> {
        let raw = RawFile {
            // The built-in categories too: the stored text alone says what was known.
            categories: self.categories.iter().cloned().collect(),
            types: self
                .types
                .iter()
                .map(|(name, record_type)| {
                    let raw_type = RawType {
                        holders: record_type
                            .holders
                            .iter()
                            .map(|kind| kind.as_str().to_owned())
                            .collect(),
                        fields: record_type
                            .fields
                            .iter()
                            .map(|(field, spec)| {
                                let raw_field = RawField {
                                    field_type: spec.field_type.name().to_owned(),
                                    category: spec.category.clone(),
                                    required: spec.required,
                                };
                                (field.clone(), raw_field)
                            })
                            .collect(),
                    };
                    (name.clone(), raw_type)
                })
                .collect(),
        };
        serde_json::to_string(&raw).map_err(|e| RecordTypeError(format!("record types: {e}")))
    }

    fn from_raw(raw: RawFile, source: &str) -> Result<Self, RecordTypeError> {
        let mut categories: BTreeSet<String> =
            KNOWN_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
        for extra in raw.categories {
            if !valid_name(&extra) {
                return Err(RecordTypeError(format!(
                    "{source}: categories: {extra:?} is not a valid category name"
                )));
            }
            categories.insert(extra);
        }
        let mut types = BTreeMap::new();
        for (name, raw_type) in raw.types {
            let error = |field: Option<&str>, message: String| {
                RecordTypeError(match field {
                    Some(field) => {
                        format!("{source}: record type {name}, field {field}: {message}")
                    }
                    None => format!("{source}: record type {name}: {message}"),
                })
            };
            if !valid_name(&name) || !name.contains('.') {
                return Err(error(
                    None,
                    "a type name is like agency.thing (a-z, 0-9, _ and .)".into(),
                ));
            }
            let holders = raw_type
                .holders
                .iter()
                .map(|h| {
                    AgencyKind::from_str(h)
                        .map_err(|_| error(None, format!("unknown holder kind {h:?}")))
                })
                .collect::<Result<BTreeSet<_>, _>>()?;
            if holders.is_empty() {
                return Err(error(
                    None,
                    "holders must name at least one agency kind".into(),
                ));
            }
            let mut fields = BTreeMap::new();
            for (field, raw_field) in raw_type.fields {
                if !valid_name(&field) {
                    return Err(error(Some(&field), "field names use a-z, 0-9 and _".into()));
                }
                let field_type = FieldType::parse(&raw_field.field_type).ok_or_else(|| {
                    error(
                        Some(&field),
                        format!("unknown field type {:?}", raw_field.field_type),
                    )
                })?;
                if !categories.contains(&raw_field.category) {
                    return Err(error(
                        Some(&field),
                        format!("unknown category {:?}", raw_field.category),
                    ));
                }
                fields.insert(
                    field,
                    FieldSpec {
                        field_type,
                        category: raw_field.category,
                        required: raw_field.required,
                    },
                );
            }
            if fields.is_empty() {
                return Err(error(None, "a record type needs at least one field".into()));
            }
            types.insert(
                name.clone(),
                RecordType {
                    name,
                    holders,
                    fields,
                },
            );
        }
        Ok(Self { types, categories })
    }

    pub fn load(path: &std::path::Path) -> Result<Self, RecordTypeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RecordTypeError(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn get(&self, name: &str) -> Option<&RecordType> {
        self.types.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    pub fn has_category(&self, category: &str) -> bool {
        self.categories.contains(category)
    }

    /// Every category a field may hold, in name order.
    pub fn categories(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHIPPED: &str = include_str!("../../config/record-types.toml");

    fn shipped() -> RecordTypes {
        RecordTypes::from_toml(SHIPPED, "record-types.toml").unwrap()
    }

    #[test]
    fn the_shipped_file_declares_the_eight_types_with_their_categories() {
        let types = shipped();
        let expected = [
            ("police.s136_detention", "detained_at", "service_usage"),
            ("police.incident", "risk_markers", "risk"),
            ("emergency.call_999", "caller_address", "contact"),
            ("ambulance.callout", "clinical_impression", "clinical"),
            ("health.ae_attendance", "self_harm", "risk"),
            ("health.crisis_plan", "diagnosis", "clinical"),
            ("health.care_plan", "adherence", "medication"),
            ("programme.mentoring_session", "pathway_stage", "care_plan"),
        ];
        for (name, field, category) in expected {
            let record_type = types.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(
                record_type.fields[field].category, category,
                "{name}.{field}"
            );
        }
        assert_eq!(types.names().count(), 8);
        let call = types.get("emergency.call_999").unwrap();
        assert!(
            call.holders.contains(&AgencyKind::Police)
                && call.holders.contains(&AgencyKind::Ambulance)
        );
        assert!(types.get("police.s136_detention").unwrap().fields["detained_at"].required);
        assert_eq!(
            types.get("police.incident").unwrap().fields["risk_markers"].field_type,
            FieldType::StringList
        );
        assert_eq!(
            types.get("health.ae_attendance").unwrap().fields["self_harm"].field_type,
            FieldType::Boolean
        );
    }

    #[test]
    fn a_definition_reads_back_as_the_same_types_and_ignores_layout() {
        let types = RecordTypes::from_toml(
            &format!("categories = [\"housing\"]\n{SHIPPED}\n[types.\"programme.tenancy\"]\nholders = [\"programme\"]\n[types.\"programme.tenancy\".fields]\nstatus = {{ category = \"housing\" }}\n"),
            "f.toml",
        )
        .unwrap();
        let definition = types.definition().unwrap();
        assert_eq!(
            RecordTypes::from_definition(&definition, "stored").unwrap(),
            types
        );
        // Comments, order and defaults written out or not make no difference.
        let relaid = "# reordered\n[types.\"a.b\".fields]\ny = { category = \"notes\", required = false }\nx = { type = \"string\", category = \"risk\" }\n[types.\"a.b\"]\nholders = [\"health\", \"police\"]\n";
        let plain = "[types.\"a.b\"]\nholders = [\"police\", \"health\"]\n[types.\"a.b\".fields]\nx = { category = \"risk\" }\ny = { category = \"notes\" }\n";
        assert_eq!(
            RecordTypes::from_toml(relaid, "a").unwrap().definition(),
            RecordTypes::from_toml(plain, "b").unwrap().definition()
        );
        // A changed category is a different definition.
        let changed = plain.replace("\"risk\"", "\"clinical\"");
        assert_ne!(
            RecordTypes::from_toml(&changed, "c").unwrap().definition(),
            RecordTypes::from_toml(plain, "b").unwrap().definition()
        );
        assert!(RecordTypes::from_definition("{\"types\": 1}", "stored").is_err());
    }

    #[test]
    fn loading_names_the_type_and_field_at_fault() {
        let unknown_type = "[types.\"a.b\"]\nholders = [\"health\"]\n[types.\"a.b\".fields]\nx = { type = \"text\", category = \"notes\" }\n";
        let message = RecordTypes::from_toml(unknown_type, "f.toml")
            .unwrap_err()
            .0;
        assert!(
            message.contains("record type a.b, field x: unknown field type \"text\""),
            "{message}"
        );

        let unknown_category = unknown_type.replace(
            "\"text\", category = \"notes\"",
            "\"string\", category = \"gossip\"",
        );
        let message = RecordTypes::from_toml(&unknown_category, "f.toml")
            .unwrap_err()
            .0;
        assert!(
            message.contains("record type a.b, field x: unknown category \"gossip\""),
            "{message}"
        );

        let duplicate = format!("{unknown_category}x = {{ category = \"notes\" }}\n")
            .replace("gossip", "notes");
        let message = RecordTypes::from_toml(&duplicate, "f.toml").unwrap_err().0;
        assert!(
            message.contains("duplicate key") && message.contains('x'),
            "{message}"
        );
    }

    #[test]
    fn data_is_checked_against_its_type_naming_the_field() {
        let types = shipped();
        let plan = types.get("health.crisis_plan").unwrap();
        assert!(plan
            .validate(&json!({"updated_on": "2026-03-01", "triggers": "noise"}))
            .is_ok());
        let cases = [
            (json!({"triggers": "noise"}), "data.updated_on"),
            (
                json!({"updated_on": "2026-03-01", "mood": "x"}),
                "data.mood",
            ),
            (json!({"updated_on": "01/03/2026"}), "data.updated_on"),
            (
                json!({"updated_on": "2026-03-01", "triggers": 4}),
                "data.triggers",
            ),
            (
                json!({"updated_on": "2026-03-01", "triggers": null}),
                "data.triggers",
            ),
            (json!(["updated_on"]), "data"),
        ];
        for (data, field) in cases {
            assert_eq!(plan.validate(&data).unwrap_err().field, field, "{data}");
        }
        let incident = types.get("police.incident").unwrap();
        assert!(incident.validate(&json!({"reported_at": "2026-03-01T10:00:00Z", "incident_type": "welfare", "risk_markers": ["self_harm"]})).is_ok());
        assert_eq!(
            incident.validate(&json!({"reported_at": "2026-03-01T10:00:00Z", "incident_type": "welfare", "risk_markers": [1]})).unwrap_err().field,
            "data.risk_markers"
        );
    }
}
