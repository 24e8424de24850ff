//! Secrets at rest: provider credentials are stored sealed with AES-256-GCM under
//! `HERALD_SECRETS_KEY`, bound to the row they belong to.
//!
//! Each sealed value is `nonce (12 bytes) || ciphertext || tag`, with a fresh random nonce per
//! seal. The row's identity (tenant and provider id) is the associated data, so a sealed value
//! copied into another row (or another tenant's) does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use uuid::Uuid;

pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;

/// The installation's secrets key. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct SecretsKey(Aes256Gcm);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

/// A sealed value would not open: another key, another row, or damaged bytes.
#[derive(Debug, thiserror::Error)]
#[error(
    "a stored secret could not be decrypted: HERALD_SECRETS_KEY is not the key it was stored with, or the row was altered"
)]
pub struct Unreadable;

impl SecretsKey {
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(Aes256Gcm::new(&bytes.into()))
    }

    /// Seals `plaintext` for the row (`tenant_id`, `row_id`).
    pub fn seal(&self, tenant_id: Uuid, row_id: Uuid, plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let aad = associated_data(tenant_id, row_id);
        let ciphertext = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // Encryption fails only for inputs beyond GCM's 64 GiB limit.
            .expect("AES-GCM seals any secret of sane size");
        [nonce.as_slice(), &ciphertext].concat()
    }

    /// Opens what [`SecretsKey::seal`] sealed for the same row.
    pub fn open(
        &self,
        tenant_id: Uuid,
        row_id: Uuid,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Unreadable> {
        if sealed.len() < NONCE_BYTES {
            return Err(Unreadable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| Unreadable)?;
        let aad = associated_data(tenant_id, row_id);
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| Unreadable)
    }
}

fn associated_data(tenant_id: Uuid, row_id: Uuid) -> [u8; 32] {
    let mut aad = [0; 32];
    aad[..16].copy_from_slice(tenant_id.as_bytes());
    aad[16..].copy_from_slice(row_id.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_row_and_key() {
        let key = SecretsKey::from_bytes([7; KEY_BYTES]);
        let (tenant, row) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(tenant, row, b"auth-token");
        assert_eq!(key.open(tenant, row, &sealed).unwrap(), b"auth-token");
        assert!(!sealed.windows(10).any(|w| w == b"auth-token"));
        assert!(key.open(tenant, Uuid::now_v7(), &sealed).is_err());
        assert!(key.open(Uuid::now_v7(), row, &sealed).is_err());
        let other = SecretsKey::from_bytes([8; KEY_BYTES]);
        assert!(other.open(tenant, row, &sealed).is_err());
        assert!(key.open(tenant, row, &sealed[..5]).is_err());
        assert_ne!(key.seal(tenant, row, b"x"), key.seal(tenant, row, b"x"));
    }
}
