//! Secrets at rest (model endpoint tokens, webhook signing secrets): sealed with
//! ChaCha20-Poly1305 under the server key before they reach the database, opened only when a call
//! needs them, never returned by the API or written to the log.
//!
//! The key is `STRATA_SECRET_KEY` (any string of at least 32 characters; its SHA-256 is the key),
//! else a random key kept in `<data dir>/secret.key` (created on first start, mode 0600).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::Digest;

/// The prefix of a sealed value (the format's version).
const PREFIX: &str = "sealed:v1:";

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key hidden>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("STRATA_SECRET_KEY must be at least 32 characters")]
    ShortKey,
    #[error("the secret key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("no randomness from the operating system")]
    Random,
    #[error("a stored secret cannot be opened (was STRATA_SECRET_KEY or secret.key changed?)")]
    Open,
}

impl SecretBox {
    /// A box from a passphrase (`STRATA_SECRET_KEY`).
    pub fn from_passphrase(pass: &str) -> Result<SecretBox, SecretError> {
        if pass.chars().count() < 32 {
            return Err(SecretError::ShortKey);
        }
        Ok(Self::from_key(sha2::Sha256::digest(pass.as_bytes()).into()))
    }

    /// A random key that lives as long as the process (tests; tools that store no secrets).
    pub fn ephemeral() -> SecretBox {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source");
        Self::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> SecretBox {
        SecretBox { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    /// The key from `STRATA_SECRET_KEY` when given, else from (or into) `<dir>/secret.key`.
    pub fn load(passphrase: Option<&str>, dir: &std::path::Path) -> Result<SecretBox, SecretError> {
        if let Some(p) = passphrase.filter(|p| !p.is_empty()) {
            return Self::from_passphrase(p);
        }
        let path = dir.join("secret.key");
        let shown = path.display().to_string();
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => Ok(Self::from_key(bytes.try_into().map_err(|_| SecretError::Random)?)),
            Ok(_) => Err(SecretError::KeyFile(shown, std::io::Error::other("not a 32-byte key"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|_| SecretError::Random)?;
                write_private(&path, &key).map_err(|e| SecretError::KeyFile(shown.clone(), e))?;
                tracing::info!(path = %shown, "created a secret key for stored tokens (set STRATA_SECRET_KEY to manage it yourself)");
                Ok(Self::from_key(key))
            }
            Err(e) => Err(SecretError::KeyFile(shown, e)),
        }
    }

    /// `sealed:v1:<base64(nonce ‖ ciphertext)>`, a fresh random nonce each time.
    pub fn seal(&self, plain: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let ct = self.cipher.encrypt(Nonce::from_slice(&nonce), plain.as_bytes()).map_err(|_| SecretError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(SecretError::Open)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64).map_err(|_| SecretError::Open)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Open);
        }
        let plain = self.cipher.decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..]).map_err(|_| SecretError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretError::Open)
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let b = SecretBox::from_passphrase("correct horse battery staple, long enough").unwrap();
        let s1 = b.seal("tok-123").unwrap();
        let s2 = b.seal("tok-123").unwrap();
        assert_ne!(s1, s2, "a fresh nonce each time");
        assert!(!s1.contains("tok-123"));
        assert_eq!(b.open(&s1).unwrap(), "tok-123");
        let other = SecretBox::from_passphrase("another passphrase that is long enough").unwrap();
        assert!(other.open(&s1).is_err(), "another key cannot open it");
        let mut tampered = s1.clone();
        tampered.pop();
        assert!(b.open(&tampered).is_err());
        assert!(SecretBox::from_passphrase("short").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load(None, dir.path()).unwrap();
        let sealed = a.seal("x").unwrap();
        let b = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(b.open(&sealed).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
