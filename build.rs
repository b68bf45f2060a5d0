//! Rebuilds when a migration is added: `embed_migrations!` reads the migration
//! directories at compile time, and cargo otherwise notices only changed Rust files.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
