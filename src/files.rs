//! Writing the gateway's own files safely: private keys with mode 0600, and every file by
//! writing a sibling, syncing it and renaming it over the old one (then syncing the
//! directory), so a reader (the CRL watcher, a restarted gateway or witness) never sees half
//! a file and a rename acknowledged is not lost in a crash.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Creates `dir` (and any missing parents) readable by the gateway's user alone.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new key file, mode 0600, and never over anything: `create_new` (O_CREAT|O_EXCL)
/// refuses an existing file and a symbolic link planted in its place alike. Synced, with
/// its directory, so a key that signed or sealed anything survives a crash.
pub fn create_key_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()?;
    sync_parent(path)
}

/// Reads a key file, refusing one that anyone but its owner may read or write.
pub fn read_key_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "mode {mode:04o} lets others read or change this key; make it 0600 (chmod 600)"
            ),
        ));
    }
    fs::read(path)
}

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
    fs::rename(&temporary, path)?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, which makes a new name in it durable. A bare file
/// name is in the working directory.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)?.sync_all()
}
