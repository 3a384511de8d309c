//! The warning ssh gives for a private key file others can read, for `--api-key-file`.

use std::path::Path;

/// Warn (on stderr, as a log event) when `path` grants any permission to its group or to
/// others. Unix only; a file that cannot be inspected is left to the read that follows.
pub(crate) fn warn_if_open(path: &Path) {
    if let Some(mode) = open_mode(path) {
        tracing::warn!(
            "API key file {} is accessible by others (permissions {mode:04o}); \
             anyone who can read it can use the key: run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
}

/// The permission bits of `path` when group or others have any.
#[cfg(unix)]
fn open_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn open_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_group_or_other_bits_count() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k").unwrap();
        for (mode, open) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(open_mode(&key).is_some(), open, "{mode:o}");
        }
    }
}
