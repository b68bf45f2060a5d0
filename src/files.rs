//! Writing the gateway's own files safely: private keys with mode 0600, and every file by
//! writing a sibling, syncing it and renaming it over the old one, so a reader (the CRL
//! watcher, a restarted gateway) never sees half a file.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(path, contents, 0o600)
}

pub fn write_public(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_replacing(path, contents, 0o644)
}

fn write_replacing(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}
