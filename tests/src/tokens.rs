//! Hand-made user tokens (HS256 with the test secret, RS256 with a test-only key pair) and
//! API key revocation through the admin CLI, for the token lifetime and revocation tests.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::process::run;
use crate::{TEST_JWT_SECRET, Tenant, TestApp};

/// The public half of `fixtures/rs256-test-only.key.pem`, a key pair made for these tests
/// only (it protects nothing): what `HERALD_JWT_RS256_PUBLIC_KEY` is set to.
pub const RS256_PUBLIC_KEY_PEM: &str = include_str!("../fixtures/rs256-test-only.pub.pem");
const RS256_PRIVATE_KEY_PEM: &str = include_str!("../fixtures/rs256-test-only.key.pem");

/// Seconds since the epoch.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// An HS256 token over `claims`, signed with the secret every test process uses.
pub fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("sign HS256")
}

/// An RS256 token over `claims`, as an external identity service would issue it.
pub fn rs256(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(RS256_PRIVATE_KEY_PEM.as_bytes()).expect("test key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign RS256")
}

impl TestApp {
    /// Revokes every API key of `tenant` with `herald-admin apikey revoke`, as an operator
    /// would.
    pub fn revoke_api_keys(&self, tenant: &Tenant) {
        let env = self.env();
        let listing = run(
            "herald-admin",
            &["apikey", "list", "--tenant", &tenant.id.to_string()],
            &env,
        );
        assert!(listing.status.success(), "{listing:?}");
        let listing = String::from_utf8(listing.stdout).expect("utf-8");
        for key_id in listing
            .lines()
            .filter_map(|line| line.split_whitespace().next())
        {
            let revoked = run("herald-admin", &["apikey", "revoke", key_id], &env);
            assert!(revoked.status.success(), "{revoked:?}");
        }
    }
}
