//! Storage edge: one diesel schema on SQLite (embedded default) or PostgreSQL (several
//! instances), chosen by the database URL's scheme.
//!
//! Only this module touches the schema; the rest of the crate calls the named query
//! functions in its submodules. Diesel is blocking, so async code reaches the database
//! through [`Database::run`], which moves the work onto tokio's blocking pool and never
//! onto the executor threads that serve requests.

pub mod agencies;
pub mod agreements;
pub mod alerts;
pub mod migrations;
pub mod principals;
pub mod record_types;
pub mod records;
pub mod schema;
pub mod subjects;

use std::{cell::RefCell, sync::Arc, time::Duration};

use crate::{config::DatabaseUrl, domain::InvalidValue};
use diesel::{
    connection::SimpleConnection,
    pg::PgConnection,
    r2d2::{self, R2D2Connection},
    sqlite::SqliteConnection,
    Connection, RunQueryDsl,
};

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error(transparent)]
    Schema(#[from] migrations::SchemaMismatch),
    #[error(transparent)]
    RefusedRole(#[from] migrations::RefusedRole),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("not found: {0:?}")]
    NotFound(Missing),
    /// A stored value no longer parses as its domain type: the data was changed outside
    /// the gateway, so refuse to act on it.
    #[error("stored data is invalid: {0}")]
    Corrupt(InvalidValue),
    #[error("database task did not complete")]
    Blocking,
}

/// Why a write was refused by what is already stored. Storage names the kind; the use-case
/// layer chooses the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    AgencyExists(String),
    PrincipalExists(String),
    /// An active principal already holds this certificate binding.
    CertificateInUse,
    /// A row this write depends on changed between read and write.
    ChangedConcurrently,
    AlreadyEnrolled,
    AlreadyDischarged,
    AgreementVersionNotNext {
        id: String,
        latest: i32,
    },
    AgreementVersionExists,
    ImportDiffers {
        id: String,
        version: i32,
    },
    AlreadyApproved {
        agency: String,
        version: i32,
    },
    AlreadyReviewed,
}

/// What a query expected to find and did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Subject,
    Agreement,
    AgreementVersion,
    Principal,
    Agency,
    AuditEntry,
}

/// Every PostgreSQL advisory lock the gateway takes, in one place so no two uses share a
/// key by accident. Each serialises one kind of read-then-write across instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKey {
    /// Running migrations (session lock), and re-sealing record payloads after them.
    Migration,
    /// Appending to the audit tree (next leaf index).
    AuditAppend,
    /// Agreement versions, approvals and events.
    Agreement,
    /// A subject's next consent version.
    Consent,
    /// Principal versions and certificate bindings.
    Principal,
    /// The next record type catalogue version.
    RecordTypes,
}

impl LockKey {
    /// Arbitrary but fixed: ASCII of a short name, so a key seen in `pg_locks` says whose
    /// it is.
    pub const fn key(self) -> i64 {
        match self {
            Self::Migration => 0x636f_6e63_6f72_6461,   // "concorda"
            Self::AuditAppend => 0x6175_6469_745f_6c6f, // "audit_lo"
            Self::Agreement => 0x6167_7265_656d_656e,   // "agreemen"
            Self::Consent => 0x636f_6e73_656e_7473,     // "consents"
            Self::Principal => 0x7072_696e_6369_7061,   // "principa"
            Self::RecordTypes => 0x7265_635f_7479_7065, // "rec_type"
        }
    }
}

/// A pool of connections to one backend, cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: r2d2::Pool<ConnectionManager>,
    url: DatabaseUrl,
    /// SQLite: each thread's own read-only connection, for [`Database::read`].
    readers: Arc<thread_local::ThreadLocal<RefCell<DbConnection>>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("url", &self.url).finish()
    }
}

impl Database {
    /// Opens a pool and checks that one connection can be made, so a wrong URL fails at
    /// start-up rather than on the first request.
    pub fn connect(url: &DatabaseUrl) -> Result<Self, DbError> {
        if let DatabaseUrl::Sqlite(path) = url {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    DbError::Connect(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
        }
        let max_size = match url {
            DatabaseUrl::Sqlite(_) => 8,
            DatabaseUrl::Postgres(_) => 16,
        };
        // Connections open on the thread that needs one, up to the maximum, and are kept
        // once open. No minimum: r2d2 tops a pool up to its minimum from a background
        // thread, and a command that exits while that thread is inside libpq's TLS
        // handshake dies of a segmentation fault in OpenSSL's exit handlers. It also spares
        // a short-lived CLI process (or a test) a server's worth of PostgreSQL connections.
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(5))
            .build(ConnectionManager { url: url.clone() })
            .map_err(|e| DbError::Connect(e.to_string()))?;
        // One connection now, so a wrong URL or an unreachable server fails at start-up
        // rather than on the first request; it stays in the pool for that request.
        drop(pool.get().map_err(|e| DbError::Connect(e.to_string()))?);
        Ok(Self {
            pool,
            url: url.clone(),
            readers: Arc::default(),
        })
    }

    /// Runs a short read-only query (the caller's principal, a subject's standing). On
    /// SQLite it runs here, on this thread's own connection: in WAL mode a read never waits
    /// for the writer, and handing microseconds of work to the blocking pool and back
    /// costs more than the work (two thread wake-ups a query; over a tenth of a read's CPU
    /// in the profile, BENCHMARKS.md). That connection refuses writes (`query_only`) and
    /// waits at most 100 ms for a lock, so it cannot hold the thread for long.
    /// On PostgreSQL, a network round trip, it is [`Database::run`].
    pub async fn read<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        let DatabaseUrl::Sqlite(path) = &self.url else {
            return self.run(work).await;
        };
        let reader = self
            .readers
            .get_or_try(|| open_sqlite(path, READ_ONLY_PRAGMAS).map(RefCell::new))?;
        // A query cannot call back into the database, so the connection is never in use
        // here already; if it were, refuse rather than wait.
        let mut conn = reader.try_borrow_mut().map_err(|_| DbError::Blocking)?;
        work(&mut conn)
    }

    /// Runs blocking database work on tokio's blocking pool.
    pub async fn run<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || work(&mut *pool.get()?))
            .await
            .map_err(|_| DbError::Blocking)?
    }

    /// The same as [`Database::run`] for work already off the executor (start-up, verify,
    /// development set-up), which must not block on the blocking pool it runs in.
    pub fn run_blocking<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        work(&mut *self.pool.get()?)
    }

    /// A connection of its own, outside the pool, for a long-lived worker (the audit
    /// writer) that must never wait behind requests for a pooled one, nor take one from
    /// them.
    pub fn dedicated_connection(&self) -> Result<DbConnection, DbError> {
        ConnectionManager {
            url: self.url.clone(),
        }
        .establish()
        .map_err(|e| DbError::Connect(e.to_string()))
    }

    /// Readiness: a connection can be had and answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| Ok(conn.ping()?)).await
    }
}

/// Every pooled SQLite connection: WAL lets readers work beside the single writer; FULL
/// makes a commit durable before it returns; the busy timeout waits out a brief writer.
const PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

/// A [`Database::read`] connection: the database is already in WAL mode, this connection
/// cannot write, and it waits at most 100 ms for a lock (in WAL mode only a checkpoint's
/// reset or recovery makes a reader wait at all) before its query, and request, fail.
const READ_ONLY_PRAGMAS: &str = "PRAGMA busy_timeout = 100; PRAGMA query_only = ON;";

fn open_sqlite(path: &std::path::Path, pragmas: &str) -> Result<DbConnection, DbError> {
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| DbError::Connect(e.to_string()))?;
    conn.batch_execute(pragmas)?;
    Ok(DbConnection::Sqlite(conn))
}

/// Opens connections by scheme. Diesel's own `MultiConnection::establish` tries each backend
/// in turn, which would let SQLite create a file named after an unreachable PostgreSQL URL.
struct ConnectionManager {
    url: DatabaseUrl,
}

impl ConnectionManager {
    fn establish(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => open_sqlite(path, PRAGMAS).map_err(|e| match e {
                DbError::Query(e) => r2d2::Error::QueryError(e),
                other => r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                    other.to_string(),
                )),
            }),
            DatabaseUrl::Postgres(_) => PgConnection::establish(&self.url.expose())
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// What the keys in `keys.dir` already protect: sealed rows (subjects, consents, records)
/// and signed checkpoints. Once either exists, a missing key must be restored, never made
/// anew.
#[derive(Debug, Clone, Copy)]
pub struct KeysInUse {
    pub sealed_rows: bool,
    pub checkpoints: bool,
}

pub fn keys_in_use(conn: &mut DbConnection) -> Result<KeysInUse, DbError> {
    use diesel::{dsl::exists, select, QueryDsl};
    use schema::{audit_checkpoints, consents, records, subjects};
    let sealed_rows = select(exists(subjects::table.select(subjects::id))).get_result(conn)?
        || select(exists(consents::table.select(consents::subject_id))).get_result(conn)?
        || select(exists(records::table.select(records::id))).get_result(conn)?;
    let checkpoints = select(exists(
        audit_checkpoints::table.select(audit_checkpoints::tree_size),
    ))
    .get_result(conn)?;
    Ok(KeysInUse {
        sealed_rows,
        checkpoints,
    })
}

/// Runs `$work` on the concrete connection underneath, with `$conn` bound to it. For the
/// statements every request runs: through the multi-backend connection, diesel writes out a
/// query's SQL again on every call to find its prepared statement (about a tenth of a
/// read's CPU in the profile); on the concrete connection a query of a fixed shape finds it
/// by its type. `$work` is compiled once per backend, so a query's backend-generic parts
/// (`as_select()`) take each backend in turn.
macro_rules! on_concrete {
    ($db:expr, |$conn:ident| $work:expr) => {
        match $db {
            $crate::db::DbConnection::Sqlite($conn) => $work,
            $crate::db::DbConnection::Postgres($conn) => $work,
        }
    };
}
pub(crate) use on_concrete;

/// Runs `work` in a transaction that holds the database's write lock from its first
/// statement, for read-then-write work (next version number, next leaf index) that must not
/// interleave with another writer.
///
/// SQLite: diesel begins transactions DEFERRED, and in WAL mode a deferred transaction
/// that read before another connection committed cannot then write (SQLITE_BUSY_SNAPSHOT,
/// which the busy timeout does not wait out); BEGIN IMMEDIATE takes the write lock first.
/// PostgreSQL: READ COMMITTED (whatever the database default), then a transaction-scoped
/// advisory lock on `lock`, so every instance queues on it.
pub fn exclusive<T>(
    conn: &mut DbConnection,
    lock: LockKey,
    work: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    match conn {
        DbConnection::Sqlite(_) => {
            conn.batch_execute("BEGIN IMMEDIATE")?;
            let done = work(conn);
            let finished = if done.is_ok() {
                conn.batch_execute("COMMIT")
            } else {
                conn.batch_execute("ROLLBACK")
            };
            if let Err(error) = finished {
                let _ = conn.batch_execute("ROLLBACK");
                return Err(error.into());
            }
            done
        }
        DbConnection::Postgres(_) => conn.transaction(|conn| {
            conn.batch_execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")?;
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(lock.key())
                .execute(conn)?;
            work(conn)
        }),
    }
}

/// Maps a unique-key violation to a conflict the caller can explain.
pub(crate) fn conflict_on_unique(error: diesel::result::Error, conflict: Conflict) -> DbError {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => DbError::Conflict(conflict),
        other => DbError::Query(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Agency, AgencyId, AgencyKind};

    #[tokio::test]
    async fn a_sqlite_read_sees_the_latest_commit_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::connect(&DatabaseUrl::Sqlite(dir.path().join("a.db"))).unwrap();
        database.migrate().unwrap();
        let agency = |id: &str| {
            Agency::new(AgencyId::parse(id).unwrap(), AgencyKind::Health, "A trust").unwrap()
        };
        assert!(database.read(agencies::list).await.unwrap().is_empty());
        let first = agency("first-trust");
        database
            .run(move |conn| agencies::insert(conn, &first))
            .await
            .unwrap();
        // The same thread's kept connection, opened before the insert, sees it.
        assert_eq!(database.read(agencies::list).await.unwrap().len(), 1);
        let second = agency("second-trust");
        let refused = database
            .read(move |conn| agencies::insert(conn, &second))
            .await;
        assert!(refused.is_err(), "a read connection wrote: {refused:?}");
        assert_eq!(database.read(agencies::list).await.unwrap().len(), 1);
    }
}
