//! Passwords: argon2id (the `argon2` crate's defaults, OWASP's minimum: 19 MiB, 2 passes), PHC
//! strings in the database, hashing on the blocking pool (it is meant to be slow).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted for a new account or a share link.
pub const MIN_LEN: usize = 10;

/// Checks a new password's length (no composition rules: NIST SP 800-63B).
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!("a password needs at least {MIN_LEN} characters (this one has {n})"));
    }
    if n > 1024 {
        return Err("a password may have at most 1024 characters".into());
    }
    Ok(())
}

/// The argon2id PHC string of `password`.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system's random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 with default parameters").to_string()
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so an unknown name takes as long
/// as a wrong password (no user enumeration by timing).
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("not a password anyone has"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ() {
        let a = super::hash("correct horse battery");
        let b = super::hash("correct horse battery");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(super::verify("correct horse battery", &a));
        assert!(!super::verify("correct horse batterx", &a));
        assert!(!super::verify("x", "not a phc string"));
        assert!(super::check_new("short").is_err());
    }
}
