//! A secret the provider hands over in a handshake instead of the operator configuring it
//! (Asana's `X-Hook-Secret`).
//!
//! Whoever completes the handshake chooses the key of every later signature, so it is
//! accepted exactly once: only while the route has no secret (its secret file is absent
//! or empty). The learned secret is written to that file (mode 0600, through a temporary
//! file renamed into place, so a crash never leaves half a secret) before it is used, is
//! used at once by the running route, and is read back like any `{ file = ... }` secret on
//! reload and restart. From then on handshakes are refused. The secret is never logged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::mac::{Algorithm, PreparedMac};
use super::{Key, KeyMaterial};

/// Why a handshake's secret was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The route already has its secret.
    #[error("the route already has a secret")]
    Established,
    /// An empty or oversized value.
    #[error("the handshake's secret is empty or longer than 1024 bytes")]
    BadSecret,
    /// Writing the file failed (the secret is then not used either).
    #[error("could not store the secret in {path:?}: {error}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// A route's learnable secret.
#[derive(Debug)]
pub struct LearnedSecret {
    path: PathBuf,
    algorithm: Algorithm,
    key: ArcSwapOption<Key>,
    /// One handshake at a time decides and writes.
    write: Mutex<()>,
}

impl LearnedSecret {
    /// `existing` is the file's content when the route was compiled (`None`: not yet
    /// learned).
    pub fn new(path: PathBuf, algorithm: Algorithm, existing: Option<&[u8]>) -> Self {
        let key = existing.map(|s| Arc::new(key_of(algorithm, s)));
        LearnedSecret {
            path,
            algorithm,
            key: ArcSwapOption::new(key),
            write: Mutex::new(()),
        }
    }

    /// Where the secret is (or will be) stored.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key, once learned.
    pub fn key(&self) -> Option<Arc<Key>> {
        self.key.load_full()
    }

    /// Whether the route has its secret.
    pub fn is_established(&self) -> bool {
        self.key.load().is_some()
    }

    /// Takes `secret` if the route has none: stores it, then uses it.
    pub fn learn(&self, secret: &[u8]) -> Result<(), LearnError> {
        if secret.is_empty() || secret.len() > 1024 {
            return Err(LearnError::BadSecret);
        }
        let _one = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_established() {
            return Err(LearnError::Established);
        }
        // Another process (or an operator) may have written the file since we compiled.
        if std::fs::read(&self.path).is_ok_and(|b| !b.trim_ascii().is_empty()) {
            return Err(LearnError::Established);
        }
        store(&self.path, secret).map_err(|error| LearnError::Store {
            path: self.path.clone(),
            error,
        })?;
        self.key
            .store(Some(Arc::new(key_of(self.algorithm, secret))));
        Ok(())
    }
}

fn key_of(algorithm: Algorithm, secret: &[u8]) -> Key {
    Key {
        index: 0,
        label: "0".to_owned(),
        material: KeyMaterial::Mac(PreparedMac::new(algorithm, secret)),
    }
}

/// Writes `secret` to `path` with mode 0600 via a temporary file in the same folder.
fn store(path: &Path, secret: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hookwall-tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(secret)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_once_and_writes_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("asana.secret");
        let learned = LearnedSecret::new(path.clone(), Algorithm::Sha256, None);
        assert!(!learned.is_established());
        learned.learn(b"first").unwrap();
        assert!(learned.is_established());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            learned.learn(b"second"),
            Err(LearnError::Established)
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(matches!(learned.learn(b""), Err(LearnError::BadSecret)));
    }

    #[test]
    fn a_file_written_meanwhile_counts_as_established() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let learned = LearnedSecret::new(path.clone(), Algorithm::Sha256, None);
        std::fs::write(&path, "operator").unwrap();
        assert!(matches!(learned.learn(b"x"), Err(LearnError::Established)));
        assert_eq!(std::fs::read(&path).unwrap(), b"operator");
    }

    #[test]
    fn a_folder_that_cannot_be_written_keeps_the_route_without_a_secret() {
        let learned = LearnedSecret::new(
            PathBuf::from("/nonexistent-hookwall-dir/s"),
            Algorithm::Sha256,
            None,
        );
        assert!(matches!(learned.learn(b"x"), Err(LearnError::Store { .. })));
        assert!(!learned.is_established());
    }
}
