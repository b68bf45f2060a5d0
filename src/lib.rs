//! Concordat: a mutual-TLS gateway through which police, NHS and ambulance services share
//! records about people in a multi-agency recovery programme, under information-sharing
//! agreements and the person's consent, with every access audited.
//!
//! The modules follow one request's path: `tls` and `identity` at the edge, then `routes`,
//! then the pure decision core (`policy`, `domain`) and `redaction`, then storage (`db`,
//! `crypto`) and the `audit` trail every request writes through. `config`, `telemetry`,
//! `metrics`, `startup`, `ops`, `pki`, `admin`, `dev` and `cli` are the operator's side.

pub mod app;
pub mod audit;
pub mod charts;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod dev;
pub mod domain;
pub mod error;
pub mod files;
pub mod identity;
pub mod metrics;
pub mod ops;
pub mod pki;
pub mod policy;
pub mod redaction;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod tls;
