//! The admin bearer token: from the configuration, from `WEIR_ADMIN_TOKEN`, or generated once into the
//! data directory (mode 0600) and reused on later starts.

use crate::config::Config;
use rand::RngCore;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file name of the generated token inside the data directory.
pub const TOKEN_FILE: &str = "admin-token";

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The data directory or token file could not be created or read.
    #[error("admin token: {path}: {source}; check that the data directory is writable (data_dir in the config)")]
    Io {
        /// The path at fault.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token in the environment or file is unusable.
    #[error("admin token from {origin} is unusable: {reason}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// Why.
        reason: &'static str,
    },
}

/// The token in force: config, then `WEIR_ADMIN_TOKEN`, then `<data_dir>/admin-token` (created when
/// missing).
pub fn token(config: &Config) -> Result<String, TokenError> {
    if let Some(t) = &config.admin.token {
        return Ok(t.clone());
    }
    if let Ok(t) = std::env::var("WEIR_ADMIN_TOKEN") {
        check(&t, "WEIR_ADMIN_TOKEN")?;
        return Ok(t);
    }
    from_data_dir(&config.data_dir)
}

fn check(t: &str, origin: &str) -> Result<(), TokenError> {
    if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::Invalid {
            origin: origin.to_string(),
            reason: "it must be at least 16 characters with no spaces",
        });
    }
    Ok(())
}

fn from_data_dir(dir: &Path) -> Result<String, TokenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TokenError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(existing) => {
            let t = existing.trim().to_string();
            check(&t, &path.display().to_string())?;
            let mode = fs::metadata(&path).map_err(io(&path))?.permissions().mode();
            if mode & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io(&path))?;
                tracing::warn!(path = %path.display(), "admin token file was readable by others; set its mode to 0600");
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            // Written to a temporary file with mode 0600 from the start, then renamed: the token is
            // never readable by others, and a crash never leaves a half-written token behind.
            let tmp = dir.join(format!(".{TOKEN_FILE}.tmp"));
            let mut f =
                OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io(&tmp))?;
            f.write_all(format!("{t}\n").as_bytes()).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            fs::rename(&tmp, &path).map_err(io(&path))?;
            tracing::info!(path = %path.display(), "generated an admin token");
            Ok(t)
        }
        Err(e) => Err(io(&path)(e)),
    }
}

/// Compares a presented token with the expected one in time independent of where they differ.
pub fn matches(presented: &[u8], expected: &str) -> bool {
    let expected = expected.as_bytes();
    if presented.len() != expected.len() {
        return false;
    }
    presented.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = from_data_dir(&data).unwrap();
        assert_eq!(first.len(), 64);
        let mode = fs::metadata(data.join(TOKEN_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(from_data_dir(&data).unwrap(), first);
    }

    #[test]
    fn loose_permissions_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE);
        fs::write(&path, "0123456789abcdef0123\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(from_data_dir(dir.path()).unwrap(), "0123456789abcdef0123");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn short_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOKEN_FILE), "short").unwrap();
        let err = from_data_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("at least 16 characters"), "{err}");
    }

    #[test]
    fn comparison_table() {
        for (a, b, want) in [("abc", "abc", true), ("abd", "abc", false), ("ab", "abc", false), ("", "", true)] {
            assert_eq!(matches(a.as_bytes(), b), want, "{a} vs {b}");
        }
    }
}
