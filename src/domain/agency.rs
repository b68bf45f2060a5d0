//! Agencies: the organisations that share records (police force, NHS trust, ambulance
//! service, local authority, the programme itself).

use std::{fmt, str::FromStr};

use serde::Serialize;

use super::{slug_id, InvalidValue};

slug_id!(AgencyId, "agency_id");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    Police,
    Health,
    Ambulance,
    LocalAuthority,
    Programme,
}

impl AgencyKind {
    pub const ALL: [Self; 5] = [
        Self::Police,
        Self::Health,
        Self::Ambulance,
        Self::LocalAuthority,
        Self::Programme,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Police => "police",
            Self::Health => "health",
            Self::Ambulance => "ambulance",
            Self::LocalAuthority => "local_authority",
            Self::Programme => "programme",
        }
    }
}

impl fmt::Display for AgencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AgencyKind {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| {
                InvalidValue::new(
                    "kind",
                    "must be one of police, health, ambulance, local_authority, programme",
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    pub id: AgencyId,
    pub kind: AgencyKind,
    pub name: String,
}

impl Agency {
    pub fn new(id: AgencyId, kind: AgencyKind, name: &str) -> Result<Self, InvalidValue> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(InvalidValue::new("name", "must be 1 to 200 characters"));
        }
        Ok(Self {
            id,
            kind,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AgencyKind::ALL {
            assert_eq!(kind.as_str().parse::<AgencyKind>().unwrap(), kind);
        }
        assert!("council".parse::<AgencyKind>().is_err());
    }

    #[test]
    fn agency_names_must_be_present() {
        let id = AgencyId::parse("iow-nhs").unwrap();
        assert!(Agency::new(id.clone(), AgencyKind::Health, "  ").is_err());
        assert_eq!(
            Agency::new(id, AgencyKind::Health, " Isle of Wight NHS Trust ")
                .unwrap()
                .name,
            "Isle of Wight NHS Trust"
        );
    }
}
