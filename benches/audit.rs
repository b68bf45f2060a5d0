//! Audit trail benchmarks: durable appends through the group-commit writer (SQLite,
//! synchronous=FULL), inclusion proofs at a million entries, and a full verify of a million
//! entries. Figures go in BENCHMARKS.md. Run with `cargo bench --bench audit`.
//!
//! The million-entry database is built once (through the writer, as the gateway builds it)
//! under `target/bench-fixtures/` and reused by later runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark set-up fails loudly on purpose"
)]

use std::{path::PathBuf, sync::Arc, time::Duration, time::Instant};

use concordat::{
    audit::{
        checkpoint::CheckpointSigner, checkpointer, merkle, store, verify, AuditLog, Decision,
        PendingEntry,
    },
    config::DatabaseUrl,
    db::Database,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use futures_util::future::join_all;

const MILLION: u64 = 1_000_000;
const ORIGIN: &str = "concordat.bench/log";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn entry(i: u64) -> PendingEntry {
    let mut entry = PendingEntry::new(
        &format!("bench-{i}"),
        concordat::audit::Action::WhoamiRead,
        Decision::Granted,
        "ok",
    );
    entry.principal_id = Some("police-mentor".into());
    entry.agency_id = Some("hampshire-police".into());
    entry.roles = vec!["practitioner".into()];
    entry.certificate_sha256 = Some("ab".repeat(32));
    entry.response_sha256 = Some("cd".repeat(32));
    entry
}

fn open(path: PathBuf) -> Database {
    let database = Database::connect(&DatabaseUrl::Sqlite(path)).unwrap();
    database.migrate().unwrap();
    database
}

/// Appends `count` entries with `concurrency` requests in flight, as a busy gateway would.
async fn append(log: &AuditLog, count: u64, concurrency: u64) {
    let workers = (0..concurrency).map(|w| {
        let log = log.clone();
        async move {
            let mut i = w;
            while i < count {
                log.append(entry(i)).await.unwrap();
                i += concurrency;
            }
        }
    });
    join_all(workers).await;
}

fn appends(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let database = open(dir.path().join("appends.db"));
    let (log, _writer) = AuditLog::start(database, Duration::from_secs(30)).unwrap();
    let mut group = c.benchmark_group("audit_append_sqlite_full_sync");
    const BATCH: u64 = 20_000;
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.bench_function("20k_entries_512_in_flight", |b| {
        b.to_async(&runtime).iter(|| append(&log, BATCH, 512));
    });
    group.finish();
}

/// The million-entry fixture with one checkpoint at its end, built on first use.
fn million() -> (Database, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit-1m.db");
    let database = open(path);
    let size = database.run_blocking(store::tree_size).unwrap();
    if size < MILLION {
        eprintln!("building the {MILLION}-entry fixture once ({size} present)...");
        let started = Instant::now();
        let (log, writer) = AuditLog::start(database.clone(), Duration::from_secs(60)).unwrap();
        runtime().block_on(append(&log, MILLION - size, 1024));
        drop(log);
        writer.join().unwrap();
        eprintln!("built in {:.1?}", started.elapsed());
    }
    let signer = CheckpointSigner::load_or_create(&dir, ORIGIN).unwrap();
    database
        .run_blocking(|conn| checkpointer::checkpoint_now(conn, &signer, ORIGIN))
        .unwrap();
    (database, dir)
}

fn proofs_and_verify(c: &mut Criterion) {
    let (database, dir) = million();
    let size = database.run_blocking(store::tree_size).unwrap();

    let mut group = c.benchmark_group("audit_at_1m_entries");
    let mut next = 0u64;
    group.bench_function("inclusion_proof", |b| {
        b.iter_batched(
            || {
                next = (next + 7919) % size;
                next
            },
            |index| {
                database
                    .run_blocking(|conn| {
                        merkle::inclusion_proof(&mut store::StoredNodes(conn), index, size)
                    })
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("consistency_proof", |b| {
        b.iter(|| {
            database
                .run_blocking(|conn| {
                    merkle::consistency_proof(&mut store::StoredNodes(conn), size / 3, size)
                })
                .unwrap()
        });
    });

    let vkey = std::fs::read_to_string(dir.join("audit-checkpoint.vkey")).unwrap();
    let key = Arc::new(concordat::audit::checkpoint::VerifierKey::parse(&vkey).unwrap());
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("full_verify", |b| {
        b.iter(|| {
            let report = verify::verify_database(&database, &key, ORIGIN, None, &mut |_, _| {})
                .unwrap()
                .unwrap();
            assert_eq!(report.entries, size);
        });
    });
    group.finish();
}

criterion_group!(benches, appends, proofs_and_verify);
criterion_main!(benches);
