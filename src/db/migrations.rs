//! The schema's version and who may change it. `concordat migrate` applies migrations as the
//! schema's owner; the gateway only checks that the schema is at its version and, on
//! PostgreSQL, that the role it connects as can read and append but never rewrite history.
//!
//! The checks read the catalogues directly: diesel's own migration harness first runs
//! `CREATE TABLE IF NOT EXISTS __diesel_schema_migrations`, which needs CREATE on the schema
//! even when the table exists, a privilege the gateway's role must not have.

use std::collections::BTreeSet;

use diesel::{
    connection::SimpleConnection,
    migration::MigrationSource,
    pg::Pg,
    sql_types::{Bool, Text},
    sqlite::Sqlite,
    Connection, QueryableByName, RunQueryDsl,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{on_concrete, Database, DbConnection, DbError, LockKey};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Why the schema is not the one this binary was built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaMismatch {
    #[error(
        "the database has no Concordat schema: run `concordat migrate` (as the schema owner) \
         before starting the gateway"
    )]
    Missing,
    #[error(
        "the database schema is behind this version of Concordat ({} migration(s) not \
         applied: {}): run `concordat migrate` as the schema owner, then start again",
        .0.len(), .0.join(", ")
    )]
    Behind(Vec<String>),
    #[error(
        "the database schema has migration(s) this version of Concordat does not know \
         ({}): it was migrated by a newer version; run that version",
        .0.join(", ")
    )]
    Ahead(Vec<String>),
}

/// Why the gateway refuses the PostgreSQL role it connected as. Each message says how to
/// put it right: the gateway runs as a login member of `concordat_app`, and only
/// `concordat migrate` runs as the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedRole {
    #[error(
        "database.url connects as `{0}`, a PostgreSQL superuser, which bypasses every grant \
         and can disable the triggers that keep history append-only: connect as a login \
         member of concordat_app (CREATE ROLE gateway LOGIN PASSWORD '...' IN ROLE \
         concordat_app) and keep the owner's credentials for `concordat migrate`"
    )]
    Superuser(String),
    #[error(
        "database.url connects as `{role}`, which owns or can act as the owner of {}: an \
         owner can disable the triggers that keep history append-only; connect as a login \
         member of concordat_app (CREATE ROLE gateway LOGIN PASSWORD '...' IN ROLE \
         concordat_app) that is not a member of the owner, and keep the owner's credentials \
         for `concordat migrate`",
        .tables.join(", ")
    )]
    Owner { role: String, tables: Vec<String> },
    #[error(
        "database.url connects as `{role}`, which holds {}: the gateway must only read and \
         append; revoke them (REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public \
         FROM <role>, for `{role}` and every role it is a member of) or connect as a login \
         member of concordat_app only",
        .grants.join(", ")
    )]
    Rewrites { role: String, grants: Vec<String> },
    #[error(
        "database.url connects as `{0}`, which may create objects in schema public (a table \
         of its own, or a function a trigger would run): run `concordat migrate` as the \
         owner, which revokes CREATE on the schema from PUBLIC, and grant CREATE to no role \
         the gateway logs in as"
    )]
    CreatesInSchema(String),
    #[error(
        "database.url connects as `{0}`, which may create or administer roles (CREATEROLE, \
         or ADMIN OPTION on a role) and so could make itself a member of the tables' owner: \
         connect as a login member of concordat_app with neither"
    )]
    GrantsRoles(String),
    #[error(
        "database.url connects as `{0}`, which may create schemas in this database (one named \
         after the owner would come first in its search path when `concordat migrate` runs): \
         REVOKE CREATE ON DATABASE <database> FROM {0} (and from PUBLIC and every role it is \
         a member of)"
    )]
    CreatesSchemas(String),
    #[error(
        "database.url connects as `{role}`, but the tables are in schema {schema}: Concordat \
         checks and keeps its tables in schema public; migrate with a search path that \
         starts with public"
    )]
    TablesElsewhere { role: String, schema: String },
    #[error(
        "database.url connects as `{0}`, which is not a member of concordat_app and so \
         cannot read or append: GRANT concordat_app TO {0}"
    )]
    NotApplicationMember(String),
}

impl Database {
    /// Applies pending migrations for this backend and returns the versions applied. On
    /// PostgreSQL it then revokes CREATE on schema `public` from PUBLIC (granted by default
    /// before PostgreSQL 15), every time, so that no role the gateway logs in as can create
    /// objects there.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        self.run_blocking(|conn| match conn {
            DbConnection::Sqlite(conn) => apply(conn, SQLITE_MIGRATIONS),
            // Serialise migrations across instances; the lock ends with the session.
            DbConnection::Postgres(conn) => {
                conn.batch_execute(&format!(
                    "SELECT pg_advisory_lock({})",
                    LockKey::Migration.key()
                ))?;
                let applied = apply(conn, POSTGRES_MIGRATIONS).and_then(|applied| {
                    conn.batch_execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")?;
                    // Revoked by a role that does not own the schema, it only warns.
                    let still = diesel::sql_query(
                        "SELECT has_schema_privilege('public', 'public', 'CREATE') AS flag",
                    )
                    .get_result::<Flag>(conn)?;
                    if still.flag {
                        return Err(DbError::Migration(
                            "PUBLIC may still create objects in schema public, and this role \
                             cannot revoke it (it does not own the schema): have the schema's \
                             owner or an administrator run REVOKE CREATE ON SCHEMA public FROM \
                             PUBLIC, or ALTER SCHEMA public OWNER TO this role"
                                .into(),
                        ));
                    }
                    Ok(applied)
                });
                conn.batch_execute(&format!(
                    "SELECT pg_advisory_unlock({})",
                    LockKey::Migration.key()
                ))?;
                applied
            }
        })
    }

    /// Refuses unless every migration this binary knows is applied and no other is.
    pub fn require_current_schema(&self) -> Result<(), DbError> {
        let (known, applied) = self.run_blocking(|conn| {
            let known = known_versions(conn)?;
            Ok((known, applied_versions(conn)?))
        })?;
        let Some(applied) = applied else {
            return Err(SchemaMismatch::Missing.into());
        };
        let behind: Vec<String> = known.difference(&applied).cloned().collect();
        let ahead: Vec<String> = applied.difference(&known).cloned().collect();
        if !ahead.is_empty() {
            return Err(SchemaMismatch::Ahead(ahead).into());
        }
        if !behind.is_empty() {
            return Err(SchemaMismatch::Behind(behind).into());
        }
        Ok(())
    }

    /// PostgreSQL: refuses a role that could rewrite history (see [`RefusedRole`]). Roles it
    /// could switch to count as its own: a member of the owner can `SET ROLE` to it. SQLite
    /// has no roles; its triggers alone keep history append-only.
    pub fn require_append_only_role(&self) -> Result<(), DbError> {
        self.run_blocking(|conn| match conn {
            DbConnection::Sqlite(_) => Ok(()),
            DbConnection::Postgres(conn) => check_role(conn),
        })
    }
}

fn apply<C>(conn: &mut C, migrations: EmbeddedMigrations) -> Result<Vec<String>, DbError>
where
    C: MigrationHarness<C::Backend> + Connection,
{
    conn.run_pending_migrations(migrations)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|e| DbError::Migration(e.to_string()))
}

/// The versions embedded in this binary for the connection's backend.
fn known_versions(conn: &DbConnection) -> Result<BTreeSet<String>, DbError> {
    let versions = match conn {
        DbConnection::Sqlite(_) => MigrationSource::<Sqlite>::migrations(&SQLITE_MIGRATIONS)
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect()),
        DbConnection::Postgres(_) => MigrationSource::<Pg>::migrations(&POSTGRES_MIGRATIONS)
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect()),
    };
    versions.map_err(|e| DbError::Migration(e.to_string()))
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The versions recorded as applied, or `None` when migrations never ran here.
fn applied_versions(conn: &mut DbConnection) -> Result<Option<BTreeSet<String>>, DbError> {
    const APPLIED: &str = "SELECT version AS name FROM __diesel_schema_migrations";
    let exists = match conn {
        DbConnection::Sqlite(conn) => diesel::sql_query(
            "SELECT name FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations'",
        )
        .load::<Name>(conn)?,
        DbConnection::Postgres(conn) => diesel::sql_query(
            "SELECT relname::text AS name FROM pg_catalog.pg_class \
             WHERE oid = to_regclass('__diesel_schema_migrations')",
        )
        .load::<Name>(conn)?,
    };
    if exists.is_empty() {
        return Ok(None);
    }
    let applied = on_concrete!(conn, |conn| diesel::sql_query(APPLIED)
        .load::<Name>(conn)?);
    Ok(Some(applied.into_iter().map(|row| row.name).collect()))
}

#[derive(QueryableByName)]
struct RoleStanding {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Bool)]
    superuser: bool,
    #[diesel(sql_type = Bool)]
    creates_in_schema: bool,
    #[diesel(sql_type = Bool)]
    creates_schemas: bool,
    #[diesel(sql_type = Bool)]
    grants_roles: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    tables_schema: Option<String>,
    #[diesel(sql_type = Bool)]
    application_role_exists: bool,
    #[diesel(sql_type = Bool)]
    application_member: bool,
}

/// The checks behind [`Database::require_append_only_role`], in order of how much the role
/// could do. "Its roles" are every role the session user is a member of (with or without
/// inheritance, since a member may `SET ROLE`), itself included; privileges granted to
/// PUBLIC count for each.
fn check_role(conn: &mut diesel::pg::PgConnection) -> Result<(), DbError> {
    const HISTORY_TABLES: &str = "SELECT c.oid, c.relname, c.relowner FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')";
    let standing = diesel::sql_query(
        "SELECT session_user::text AS role, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                        WHERE r.rolsuper AND r.rolname IN (session_user, current_user)) \
                    AS superuser, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                        WHERE pg_has_role(session_user, r.oid, 'MEMBER') \
                          AND has_schema_privilege(r.oid, 'public', 'CREATE')) \
                    OR has_schema_privilege(session_user, 'public', 'CREATE') \
                    AS creates_in_schema, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                        WHERE pg_has_role(session_user, r.oid, 'MEMBER') \
                          AND has_database_privilege(r.oid, current_database(), 'CREATE')) \
                    OR has_database_privilege(session_user, current_database(), 'CREATE') \
                    AS creates_schemas, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                        WHERE pg_has_role(session_user, r.oid, 'MEMBER') AND r.rolcreaterole) \
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                        WHERE r.rolname <> session_user \
                          AND pg_has_role(session_user, r.oid, 'MEMBER WITH ADMIN OPTION')) \
                    AS grants_roles, \
                (SELECT n.nspname::text FROM pg_catalog.pg_class c \
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                  WHERE c.oid = to_regclass('audit_entries')) AS tables_schema, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'concordat_app') \
                    AS application_role_exists, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = 'concordat_app' \
                        AND pg_has_role(session_user, r.oid, 'USAGE')) \
                    AS application_member",
    )
    .get_result::<RoleStanding>(conn)?;
    let role = standing.role;
    if standing.superuser {
        return Err(RefusedRole::Superuser(role).into());
    }
    // Whoever may grant roles may grant itself the owner's.
    if standing.grants_roles {
        return Err(RefusedRole::GrantsRoles(role).into());
    }
    if let Some(schema) = standing.tables_schema.filter(|schema| schema != "public") {
        return Err(RefusedRole::TablesElsewhere { role, schema }.into());
    }
    let owned = diesel::sql_query(format!(
        "SELECT t.relname::text AS name FROM ({HISTORY_TABLES}) t \
         WHERE pg_has_role(session_user, t.relowner, 'MEMBER') ORDER BY 1"
    ))
    .load::<Name>(conn)?;
    if !owned.is_empty() {
        let tables = owned.into_iter().map(|t| t.name).collect();
        return Err(RefusedRole::Owner { role, tables }.into());
    }
    // Column-level UPDATE counts as UPDATE: it rewrites rows all the same.
    let grants = diesel::sql_query(format!(
        "SELECT p.privilege || ' on ' || t.relname AS name FROM ({HISTORY_TABLES}) t \
         CROSS JOIN (VALUES ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS p(privilege) \
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r \
                       WHERE pg_has_role(session_user, r.oid, 'MEMBER') \
                         AND CASE p.privilege \
                               WHEN 'UPDATE' THEN has_any_column_privilege(r.oid, t.oid, 'UPDATE') \
                               ELSE has_table_privilege(r.oid, t.oid, p.privilege) END) \
         ORDER BY t.relname, p.privilege"
    ))
    .load::<Name>(conn)?;
    if !grants.is_empty() {
        let grants = grants.into_iter().map(|g| g.name).collect();
        return Err(RefusedRole::Rewrites { role, grants }.into());
    }
    if standing.creates_in_schema {
        return Err(RefusedRole::CreatesInSchema(role).into());
    }
    if standing.creates_schemas {
        return Err(RefusedRole::CreatesSchemas(role).into());
    }
    // Before the first `migrate` the role may not exist yet; the schema check then refuses.
    if standing.application_role_exists && !standing.application_member {
        return Err(RefusedRole::NotApplicationMember(role).into());
    }
    Ok(())
}
