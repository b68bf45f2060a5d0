//! Concordat: a mutual-TLS gateway through which police, NHS and ambulance services share
//! records about people in a multi-agency recovery programme, under information-sharing
//! agreements and the person's consent, with every access audited.
//!
//! The modules follow one request's path: `tls` and `identity` at the edge, then `routes`,
//! then the use cases of `app`, which every caller (the API, the CLI, the console) goes
//! through, then the pure decision core (`policy`, `domain`) and `redaction`, then storage
//! (`db`, `crypto`) and the `audit` trail every call writes through. `config`,
//! `telemetry`, `metrics`, `startup`, `ops`, `pki`, `charts`, `files` and `cli` (with
//! development mode) are the operator's side and the edges' helpers.

pub mod app;
pub mod audit;
pub mod charts;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
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
pub mod witness;
