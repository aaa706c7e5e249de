//! Temporary directories that go away with the test.

use std::path::{Path, PathBuf};

/// A directory removed on drop, whatever happened, unless `INVITRACK_KEEP_TEST_DIRS` is set
/// (to read the logs of the servers and processes a test ran).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// # Panics
    /// When the directory cannot be created.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(crate::unique(&format!("invitrack-{name}")));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("INVITRACK_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
