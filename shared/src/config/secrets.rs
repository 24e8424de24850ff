//! `HERALD_SECRETS_KEY`: the key that encrypts provider secrets at rest.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Env, Environment};
use crate::secrets::{KEY_BYTES, SecretsKey};

/// Where a development machine keeps its generated key, so every local process decrypts what
/// another one encrypted, across restarts.
const DEV_KEY_FILE: &str = ".herald/dev-secrets-key";

const VARIABLE: &str = "HERALD_SECRETS_KEY";

/// Reads the key: 32 bytes in standard base64. Development generates one on first use.
pub fn read(env: &mut Env, environment: Environment) -> SecretsKey {
    let encoded = match env.raw(VARIABLE) {
        Some(encoded) => encoded,
        None if environment.is_development() => match dev_key(Path::new(DEV_KEY_FILE)) {
            Ok(encoded) => encoded,
            Err(error) => {
                env.error(
                    VARIABLE,
                    format!("unset, and the development key could not be kept in {DEV_KEY_FILE}: {error}"),
                );
                return SecretsKey::from_bytes([0; KEY_BYTES]);
            }
        },
        None => {
            env.error(
                VARIABLE,
                "required when HERALD_ENV=production (32 random bytes in base64: `openssl rand -base64 32`)",
            );
            return SecretsKey::from_bytes([0; KEY_BYTES]);
        }
    };
    match decode(&encoded) {
        Some(bytes) => SecretsKey::from_bytes(bytes),
        None => {
            env.error(
                VARIABLE,
                "expected 32 bytes in base64 (`openssl rand -base64 32`)",
            );
            SecretsKey::from_bytes([0; KEY_BYTES])
        }
    }
}

fn decode(encoded: &str) -> Option<[u8; KEY_BYTES]> {
    STANDARD.decode(encoded.trim()).ok()?.try_into().ok()
}

/// Reads the development key, creating it (and saying so, once) on first use.
fn dev_key(path: &Path) -> std::io::Result<String> {
    if let Ok(encoded) = std::fs::read_to_string(path)
        && decode(&encoded).is_some()
    {
        return Ok(encoded.trim().to_owned());
    }
    let bytes: [u8; KEY_BYTES] = rand::random();
    let encoded = STANDARD.encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, &encoded)?;
    eprintln!(
        "herald: {VARIABLE} is unset; generated a development key in {} (shared by every \
         local process). Set {VARIABLE} in production, and keep it: provider secrets stored \
         under one key cannot be read with another.",
        path.display()
    );
    Ok(encoded)
}
