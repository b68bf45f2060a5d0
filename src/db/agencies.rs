//! Queries on `agencies`.

use diesel::prelude::*;

use super::{conflict_on_unique, schema::agencies, Conflict, DbConnection, DbError};
use crate::domain::{Agency, AgencyId, AgencyKind};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = agencies)]
struct AgencyRow {
    id: String,
    kind: String,
    name: String,
    created_at: i64,
}

impl AgencyRow {
    fn into_agency(self) -> Result<Agency, DbError> {
        let id = AgencyId::parse(&self.id).map_err(DbError::Corrupt)?;
        let kind: AgencyKind = self.kind.parse().map_err(DbError::Corrupt)?;
        Agency::new(id, kind, &self.name).map_err(DbError::Corrupt)
    }
}

pub fn insert(conn: &mut DbConnection, agency: &Agency) -> Result<(), DbError> {
    diesel::insert_into(agencies::table)
        .values(AgencyRow {
            id: agency.id.to_string(),
            kind: agency.kind.as_str().to_owned(),
            name: agency.name.clone(),
            created_at: crate::domain::Timestamp::now().micros(),
        })
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AgencyExists(agency.id.to_string())))?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &AgencyId) -> Result<Option<Agency>, DbError> {
    agencies::table
        .find(id.as_str())
        .select(AgencyRow::as_select())
        .first(conn)
        .optional()?
        .map(AgencyRow::into_agency)
        .transpose()
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Agency>, DbError> {
    agencies::table
        .order(agencies::id)
        .select(AgencyRow::as_select())
        .load(conn)?
        .into_iter()
        .map(AgencyRow::into_agency)
        .collect()
}
