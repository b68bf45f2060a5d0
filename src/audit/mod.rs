//! The audit trail.
pub mod merkle;
