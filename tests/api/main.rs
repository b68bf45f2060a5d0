//! Integration tests: the real server on ephemeral ports, certificates made in the test,
//! called with a real mutual-TLS client. SQLite in a temporary directory, or a fresh
//! PostgreSQL database when `CONCORDAT_TEST_POSTGRES_URL` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] functions fail loudly on purpose"
)]

mod agreements;
mod audit;
mod authorisation;
mod cli;
mod console;
mod edges;
mod errors;
mod explain;
mod helpers;
mod identity;
mod ig_report;
mod migrations;
mod ops;
mod records;
mod reports;
mod subjects;
mod tls;
mod trail;
mod whoami;
mod witnesses;
