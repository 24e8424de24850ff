//! Secrets out of logs: URLs that may carry a password, redacted before they are printed.

/// Query parameters whose value is a secret (libpq's `password`/`sslpassword`, and the names
/// other clients use for tokens and keys).
const SECRET_PARAMS: &[&str] = &[
    "password",
    "sslpassword",
    "pass",
    "passwd",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
];

const MASK: &str = "REDACTED";

/// `url` with its userinfo password and every secret query parameter replaced by `REDACTED`,
/// for error messages and logs. A URL that does not parse is not echoed at all: it may still
/// hold a password in a shape the parser did not recognise.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(unparseable URL)".to_owned();
    };
    if parsed.password().is_some() {
        // Only fails for URLs that cannot have credentials, which then have no password.
        let _ = parsed.set_password(Some(MASK));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let secret = SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s));
                let value = if secret {
                    MASK.to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_userinfo_are_masked() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:REDACTED@h:5432/db"
        );
        assert_eq!(
            redact_url("redis://:hunter2@127.0.0.1:6390/0"),
            "redis://:REDACTED@127.0.0.1:6390/0"
        );
        assert_eq!(
            redact_url("smtps://mailer:p%40ss@smtp.example.com:465"),
            "smtps://mailer:REDACTED@smtp.example.com:465"
        );
    }

    #[test]
    fn secret_query_parameters_are_masked_and_others_kept() {
        let redacted =
            redact_url("postgres://u@h/db?sslmode=require&password=s3cr3t&SSLPASSWORD=k3y");
        assert_eq!(
            redacted,
            "postgres://u@h/db?sslmode=require&password=REDACTED&SSLPASSWORD=REDACTED"
        );
        assert!(!redact_url("postgres://h/db?password=a%26b").contains("a%26b"));
    }

    #[test]
    fn urls_without_secrets_are_unchanged_and_garbage_is_not_echoed() {
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/herald"),
            "postgres://postgres@127.0.0.1/herald"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!redact_url("not a url :secret@").contains("secret"));
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db?password=other"),
            "postgres://u:REDACTED@h:5432/db?password=REDACTED"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/herald"),
            "postgres://postgres@127.0.0.1/herald"
        );
    }
}
