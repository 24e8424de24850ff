//! API keys: generated once, shown once, stored only as a SHA-256 hash.
//!
//! Keys are 240 random bits, so a fast hash is enough (as with GitHub or Stripe tokens): there
//! is nothing to brute-force that a slow password hash would protect. The first characters are
//! kept in clear as an indexed lookup prefix, and the full hash is compared in constant time.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every Herald key starts with this, so leaked keys are recognisable by secret scanners.
const KEY_MARKER: &str = "hk_";
/// Characters kept in clear (marker included) for lookup and display.
pub const PREFIX_CHARS: usize = 12;
const RANDOM_BYTES: usize = 30;

/// A freshly generated key: `plaintext` is shown to the operator once and never stored.
pub struct GeneratedApiKey {
    pub plaintext: String,
    pub prefix: String,
    pub hash: Vec<u8>,
}

pub fn generate() -> GeneratedApiKey {
    let bytes: [u8; RANDOM_BYTES] = rand::random();
    let plaintext = format!(
        "{KEY_MARKER}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    GeneratedApiKey {
        prefix: plaintext[..PREFIX_CHARS].to_owned(),
        hash: hash(&plaintext),
        plaintext,
    }
}

/// The lookup prefix of a presented key, or `None` when it cannot be a Herald key.
pub fn lookup_prefix(presented: &str) -> Option<&str> {
    let well_formed = presented.starts_with(KEY_MARKER)
        && presented.len() > PREFIX_CHARS
        && presented
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    well_formed.then(|| &presented[..PREFIX_CHARS])
}

pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Constant-time comparison of a presented key with a stored hash.
pub fn matches(presented: &str, stored_hash: &[u8]) -> bool {
    hash(presented).ct_eq(stored_hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_matches_its_hash_and_nothing_else() {
        let key = generate();
        assert_eq!(lookup_prefix(&key.plaintext), Some(key.prefix.as_str()));
        assert!(matches(&key.plaintext, &key.hash));
        let mut tampered = key.plaintext.clone();
        tampered.push('x');
        assert!(!matches(&tampered, &key.hash));
        assert!(!matches(&generate().plaintext, &key.hash));
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        for key in [
            "",
            "hk_",
            "hk_short",
            "sk_aaaaaaaaaaaaaaaaaaaa",
            "hk_aaaaaaaaaaaa aaaa",
        ] {
            assert_eq!(lookup_prefix(key), None, "{key:?}");
        }
    }
}
