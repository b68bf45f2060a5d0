//! Exports of the audit trail, written page by page so a million entries never sit in
//! memory: NDJSON (each line exactly the hashed leaf data, so anyone can recompute the
//! tree), CSV for spreadsheets, and a FHIR R4 Bundle of AuditEvent resources.
//!
//! [`Export`] is the paging, in one place for every caller: the API streams its chunks,
//! the CLI writes them to a file.

use serde_json::{json, Value};

use super::{
    entry::{AuditEntry, Decision},
    store::{self, Filter, StoredEntry},
    Action, LeafIndex,
};
use crate::{
    db::{DbConnection, DbError},
    domain::{purpose::Purpose, Timestamp},
};

/// Entries fetched per database round trip.
pub const PAGE: i64 = 1000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Ndjson,
    Csv,
    Fhir,
}

impl ExportFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Fhir => "application/fhir+json",
        }
    }
}

const CSV_COLUMNS: [&str; 20] = [
    "leaf_index",
    "time",
    "request_id",
    "principal_id",
    "agency_id",
    "roles",
    "certificate_sha256",
    "action",
    "decision",
    "reason",
    "purpose",
    "subject_id",
    "record_ids",
    "agreements",
    "consent_version",
    "released",
    "withheld",
    "break_glass",
    "justification",
    "response_sha256",
];

/// Where an export has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    After(Option<LeafIndex>),
    Finished,
}

/// One export of the trail as it stood when the export began, handed out a chunk at a
/// time: the format's opening, a page of entries per chunk, then its closing.
#[derive(Debug)]
pub struct Export {
    writer: Writer,
    filter: Filter,
    stage: Stage,
}

impl Export {
    /// Fixes the export's end at the current tree size, so that a busy gateway cannot keep
    /// it open (and an export's own entry, written after this, is not part of it).
    pub fn begin(
        conn: &mut DbConnection,
        format: ExportFormat,
        origin: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<Self, DbError> {
        let size = store::tree_size(conn)?;
        Ok(Self {
            writer: Writer::new(format, origin),
            filter: Filter {
                from,
                to,
                before_index: Some(LeafIndex(size)),
                ..Filter::default()
            },
            stage: Stage::Start,
        })
    }

    pub fn format(&self) -> ExportFormat {
        self.writer.format
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.writer.written
    }

    /// The next bytes of the export; `None` once it is complete.
    pub fn next_chunk(&mut self, conn: &mut DbConnection) -> Result<Option<Vec<u8>>, DbError> {
        match self.stage {
            Stage::Start => {
                self.stage = Stage::After(None);
                Ok(Some(self.writer.begin()))
            }
            Stage::After(after) => {
                let page = store::entries(conn, &self.filter, after, PAGE)?;
                match page.last() {
                    Some(last) => {
                        self.stage = Stage::After(Some(last.index()));
                        Ok(Some(self.writer.page(&page)?))
                    }
                    None => {
                        self.stage = Stage::Finished;
                        Ok(Some(self.writer.end()))
                    }
                }
            }
            Stage::Finished => Ok(None),
        }
    }
}

/// Encodes entries in one format: [`Writer::begin`], then [`Writer::page`] per page, then
/// [`Writer::end`].
#[derive(Debug)]
struct Writer {
    format: ExportFormat,
    origin: String,
    written: u64,
}

impl Writer {
    fn new(format: ExportFormat, origin: &str) -> Self {
        Self {
            format,
            origin: origin.to_owned(),
            written: 0,
        }
    }

    fn begin(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Ndjson => Vec::new(),
            ExportFormat::Csv => format!("{}\r\n", CSV_COLUMNS.join(",")).into_bytes(),
            ExportFormat::Fhir => {
                br#"{"resourceType":"Bundle","type":"collection","entry":["#.to_vec()
            }
        }
    }

    fn page(&mut self, entries: &[StoredEntry]) -> Result<Vec<u8>, DbError> {
        let mut out = Vec::with_capacity(entries.len() * 600);
        for stored in entries {
            match self.format {
                ExportFormat::Ndjson => {
                    out.extend_from_slice(&stored.leaf_data);
                    out.push(b'\n');
                }
                ExportFormat::Csv => csv_row(&store::decode(stored)?, &mut out),
                ExportFormat::Fhir => {
                    if self.written > 0 {
                        out.push(b',');
                    }
                    let resource = audit_event(&store::decode(stored)?, &self.origin);
                    let item = json!({"fullUrl": format!("urn:uuid:{}", uuid_for(stored)), "resource": resource});
                    // Serialising a `Value` to a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut out, &item);
                }
            }
            self.written += 1;
        }
        Ok(out)
    }

    fn end(&self) -> Vec<u8> {
        match self.format {
            ExportFormat::Fhir => b"]}\n".to_vec(),
            _ => Vec::new(),
        }
    }
}

/// A stable resource id derived from the leaf index: the same entry, the same id.
fn uuid_for(entry: &StoredEntry) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(0x636f_6e63_6f72_6461, entry.index().0)
}

/// Spreadsheet programs run cells that begin with these as formulas; a leading
/// apostrophe keeps a justification or reason from becoming one (OWASP CSV injection).
fn defuse(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn csv_row(entry: &AuditEntry, out: &mut Vec<u8>) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let list = |v: &[String]| v.join(";");
    let cells = [
        entry.leaf_index.to_string(),
        entry.time.clone(),
        entry.request_id.clone(),
        text(&entry.principal_id),
        text(&entry.agency_id),
        list(&entry.roles),
        text(&entry.certificate_sha256),
        entry.action.clone(),
        entry.decision.as_str().to_owned(),
        entry.reason.clone(),
        text(&entry.purpose),
        text(&entry.subject_id),
        list(&entry.record_ids),
        list(&entry.agreements),
        entry
            .consent_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        list(&entry.released),
        list(&entry.withheld),
        entry.break_glass.to_string(),
        text(&entry.justification),
        text(&entry.response_sha256),
    ];
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail; a failure would only drop this row's bytes.
    let _ = writer.write_record(cells.map(defuse));
    if let Ok(bytes) = writer.into_inner() {
        out.extend_from_slice(&bytes);
    }
}

/// Adds a member to a JSON object built with `json!`.
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(members) = object.as_object_mut() {
        members.insert(key.to_owned(), value);
    }
}

/// HL7 v3 ActReason codes for the gateway's purposes (FHIR `purposeOfEvent`).
fn purpose_of_use(purpose: Purpose) -> (&'static str, &'static str) {
    match purpose {
        Purpose::CrisisResponse => ("ETREAT", "Emergency Treatment"),
        Purpose::CareCoordination => ("COC", "coordination of care"),
        Purpose::Safeguarding => ("PUBHLTH", "public health"),
        Purpose::ServiceEvaluation => ("HQUALIMP", "health quality improvement"),
        Purpose::Audit => ("HOPERAT", "healthcare operations"),
        Purpose::SubjectAccess => ("PATRQT", "patient requested"),
    }
}

/// One entry as a FHIR R4 AuditEvent. Break-glass is coded as HL7's `BTG` purpose of use,
/// as the FHIR security labels guidance does.
pub fn audit_event(entry: &AuditEntry, origin: &str) -> Value {
    let mut purposes = Vec::new();
    if let Some(purpose) = &entry.purpose {
        let mut coding = vec![json!({"system": "urn:concordat:purpose", "code": purpose})];
        if let Some((code, display)) = purpose.parse().ok().map(purpose_of_use) {
            coding.insert(0, json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": code, "display": display}));
        }
        purposes.push(json!({"coding": coding}));
    }
    if entry.break_glass {
        purposes.push(json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG", "display": "break the glass"}]}));
    }
    let outcome = match entry.decision {
        Decision::Granted => "0",
        Decision::Denied => "4",
        Decision::Error => "8",
    };
    let mut agent = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser", "display": "human user"}]},
        "requestor": true,
        "role": [{"coding": entry.roles.iter().map(|r| json!({"system": "urn:concordat:role", "code": r})).collect::<Vec<_>>()}],
    });
    if let Some(principal) = &entry.principal_id {
        set(
            &mut agent,
            "who",
            json!({"identifier": {"system": "urn:concordat:principal", "value": principal}}),
        );
    }
    if let Some(agency) = &entry.agency_id {
        set(
            &mut agent,
            "location",
            json!({"identifier": {"system": "urn:concordat:agency", "value": agency}, "display": agency}),
        );
    }
    if let Some(fingerprint) = &entry.certificate_sha256 {
        set(&mut agent, "altId", json!(format!("sha256:{fingerprint}")));
    }
    if !purposes.is_empty() {
        set(&mut agent, "purposeOfUse", json!(purposes));
    }
    let mut entities = Vec::new();
    if let Some(subject) = &entry.subject_id {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:concordat:subject", "value": subject}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        }));
    }
    for record in &entry.record_ids {
        entities.push(json!({
            "what": {"identifier": {"system": "urn:concordat:record", "value": record}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": entry.leaf_index.to_string(),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "urn:concordat:action", "code": entry.action}],
        // A name no version of the gateway writes cannot be classified: "execute".
        "action": Action::parse(&entry.action).map_or("E", |action| action.fhir().code()),
        "recorded": entry.time,
        "outcome": outcome,
        "outcomeDesc": entry.reason,
        "agent": [agent],
        "source": {
            "site": origin,
            "observer": {"display": "concordat gateway"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
    });
    if !purposes.is_empty() {
        set(&mut event, "purposeOfEvent", json!(purposes));
    }
    if !entities.is_empty() {
        set(&mut event, "entity", json!(entities));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::PendingEntry;

    fn entry() -> AuditEntry {
        let mut pending = PendingEntry::new(
            "r",
            crate::audit::Action::RecordsRead,
            Decision::Granted,
            "ok",
        );
        pending.purpose = Some("crisis_response".into());
        pending.break_glass = true;
        pending.subject_id = Some("subj-1".into());
        pending.principal_id = Some("police-mentor".into());
        pending.justification = Some("=HYPERLINK(\"x\")".into());
        pending.at_index(crate::audit::LeafIndex(7))
    }

    #[test]
    fn fhir_codes_break_glass_purpose_and_outcome() {
        let event = audit_event(&entry(), "o");
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["outcome"], "0");
        let codes: Vec<&str> = event["purposeOfEvent"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["code"].as_str().unwrap())
            })
            .collect();
        assert!(
            codes.contains(&"BTG") && codes.contains(&"ETREAT"),
            "{codes:?}"
        );
        assert_eq!(event["entity"][0]["what"]["identifier"]["value"], "subj-1");
        assert_eq!(
            event["agent"][0]["who"]["identifier"]["value"],
            "police-mentor"
        );
    }

    #[test]
    fn fhir_actions_come_from_the_action_catalogue() {
        let action_of = |name: &str| {
            let mut entry = entry();
            entry.action = name.to_owned();
            audit_event(&entry, "o")["action"].clone()
        };
        // Disclosures are reads, whatever their names end with.
        for name in ["records.read", "subject.lookup", "consent.history"] {
            assert_eq!(action_of(name), "R", "{name}");
        }
        assert_eq!(action_of("subject.enrol"), "C");
        assert_eq!(action_of("agreement.approve"), "U");
        assert_eq!(action_of("no.such_action"), "E");
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        let mut out = Vec::new();
        csv_row(&entry(), &mut out);
        let row = String::from_utf8(out).unwrap();
        assert!(row.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{row}");
        assert!(row.ends_with("\r\n"));
    }
}
