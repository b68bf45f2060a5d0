//! The audit trail.
pub mod checkpoint;
pub mod entry;
pub mod merkle;
