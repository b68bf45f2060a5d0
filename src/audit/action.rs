//! The closed vocabulary of audited actions: each action's name in the trail, whether it
//! discloses personal data (the subject access report lists those), and its FHIR
//! `AuditEvent.action` code. The HTTP route table names one of these beside each route; the
//! CLI names one for each operator command.

use std::fmt;

/// FHIR R4 `AuditEvent.action`: create, read, update, delete, execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FhirAction {
    Create,
    Read,
    Update,
    Execute,
}

impl FhirAction {
    pub fn code(self) -> &'static str {
        match self {
            Self::Create => "C",
            Self::Read => "R",
            Self::Update => "U",
            Self::Execute => "E",
        }
    }
}

macro_rules! actions {
    ($($variant:ident => $name:literal, discloses: $discloses:literal, fhir: $fhir:ident;)*) => {
        /// Every action the trail records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name written into entries (`records.read`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// Whether a granted entry of this action released personal data about its
            /// subject, so that the subject access report must list it.
            pub fn discloses(self) -> bool {
                match self {
                    $(Self::$variant => $discloses,)*
                }
            }

            pub fn fhir(self) -> FhirAction {
                match self {
                    $(Self::$variant => FhirAction::$fhir,)*
                }
            }
        }
    };
}

actions! {
    WhoamiRead => "whoami.read", discloses: false, fhir: Read;
    OpenapiRead => "openapi.read", discloses: false, fhir: Read;
    AuditSearch => "audit.search", discloses: false, fhir: Read;
    AuditEntry => "audit.entry", discloses: false, fhir: Read;
    AuditCheckpoint => "audit.checkpoint", discloses: false, fhir: Read;
    AuditCheckpointKey => "audit.checkpoint_key", discloses: false, fhir: Read;
    AuditConsistency => "audit.consistency", discloses: false, fhir: Read;
    AuditExport => "audit.export", discloses: false, fhir: Read;
    AuditAlerts => "audit.alerts", discloses: false, fhir: Read;
    AuditAlertReview => "audit.alert_review", discloses: false, fhir: Create;
    AuditActivity => "audit.activity", discloses: false, fhir: Read;
    AuditExplain => "audit.explain", discloses: true, fhir: Read;
    SubjectEnrol => "subject.enrol", discloses: false, fhir: Create;
    SubjectLookup => "subject.lookup", discloses: true, fhir: Read;
    SubjectDischarge => "subject.discharge", discloses: false, fhir: Update;
    SubjectAccessReport => "subject.access_report", discloses: false, fhir: Read;
    SubjectCaseload => "subject.caseload", discloses: false, fhir: Read;
    ConsentRecord => "consent.record", discloses: false, fhir: Create;
    ConsentWithdraw => "consent.withdraw", discloses: false, fhir: Create;
    ConsentHistory => "consent.history", discloses: true, fhir: Read;
    RecordsSubmit => "records.submit", discloses: false, fhir: Create;
    RecordsRead => "records.read", discloses: true, fhir: Read;
    RecordsReseal => "records.reseal", discloses: false, fhir: Update;
    AgreementList => "agreement.list", discloses: false, fhir: Read;
    AgreementCreate => "agreement.create", discloses: false, fhir: Create;
    AgreementRead => "agreement.read", discloses: false, fhir: Read;
    AgreementApprove => "agreement.approve", discloses: false, fhir: Update;
    AgreementSuspend => "agreement.suspend", discloses: false, fhir: Update;
    AgreementTerminate => "agreement.terminate", discloses: false, fhir: Update;
    AgreementImport => "agreement.import", discloses: false, fhir: Create;
    ReportServiceUsage => "report.service_usage", discloses: false, fhir: Read;
    ReportIg => "report.ig", discloses: false, fhir: Read;
    AgencyAdd => "agency.add", discloses: false, fhir: Create;
    PrincipalAdd => "principal.add", discloses: false, fhir: Create;
    PrincipalDisable => "principal.disable", discloses: false, fhir: Update;
    PrincipalList => "principal.list", discloses: false, fhir: Read;
    ConsolePage => "console.page", discloses: false, fhir: Read;
    ConsoleAsset => "console.asset", discloses: false, fhir: Read;
    UnknownRoute => "unknown_route", discloses: false, fhir: Execute;
    MethodNotAllowed => "method_not_allowed", discloses: false, fhir: Execute;
}

impl Action {
    /// The action named `name` in an entry; `None` for a name no version of the gateway
    /// writes.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Action {
    type Err = crate::domain::InvalidValue;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
            .ok_or_else(|| crate::domain::InvalidValue::new("action", "is not an audited action"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let names: BTreeSet<_> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            assert_eq!(Action::parse(action.name()), Some(*action));
        }
        assert_eq!(Action::parse("records.write"), None);
    }

    #[test]
    fn the_disclosing_actions_are_the_reads_of_personal_data() {
        let disclosing: Vec<_> = Action::ALL
            .iter()
            .filter(|a| a.discloses())
            .map(|a| a.name())
            .collect();
        assert_eq!(
            disclosing,
            [
                "audit.explain",
                "subject.lookup",
                "consent.history",
                "records.read"
            ]
        );
        for action in Action::ALL.iter().filter(|a| a.discloses()) {
            assert_eq!(action.fhir(), FhirAction::Read, "{action}");
        }
    }
}
