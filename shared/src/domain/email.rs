//! Email addresses: one parser for the API and the mailer, so what the API accepts the mailer
//! can send.
//!
//! The mailer hands recipients to lettre, so lettre's `Mailbox` grammar is the base; on top of
//! it: no control characters anywhere (no header folding, no `\r\nBcc:`), no domain literals
//! (`v@[127.0.0.1]` would bypass DNS-based policy), one mailbox only (no lists or groups).

use std::str::FromStr;

use lettre::message::Mailbox;

/// Longest address SMTP can carry in a path (RFC 5321 §4.5.3.1: 256 octets with the brackets).
pub const EMAIL_MAX_CHARS: usize = 254;

/// What every caller reports for an address it cannot accept.
pub const EMAIL_INVALID: &str = "The email must be one valid address, optionally with a display \
     name (`Ada <ada@example.com>`); no control characters, lists or IP-address domains.";

/// Parses one recipient as the mailer will: `ada@example.com` or `Ada <ada@example.com>`.
pub fn parse_mailbox(text: &str) -> Result<Mailbox, &'static str> {
    let text = text.trim();
    if text.chars().any(char::is_control) || text.chars().count() > EMAIL_MAX_CHARS * 2 {
        return Err(EMAIL_INVALID);
    }
    let mailbox = Mailbox::from_str(text).map_err(|_| EMAIL_INVALID)?;
    let address: &str = mailbox.email.as_ref();
    let name_ok = mailbox
        .name
        .as_deref()
        .is_none_or(|name| !name.chars().any(|c| c.is_control() || c == '@'));
    let domain_ok = !mailbox.email.domain().starts_with('[');
    if !name_ok || !domain_ok || address.chars().count() > EMAIL_MAX_CHARS {
        return Err(EMAIL_INVALID);
    }
    Ok(mailbox)
}

/// The address to store for `text` (trimmed, otherwise as sent), if the mailer can send to it.
pub fn validate_email(text: &str) -> Result<String, &'static str> {
    parse_mailbox(text).map(|_| text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_named_addresses_are_accepted() {
        for good in [
            "ada@example.com",
            "  ada@example.com ",
            "Ada Lovelace <ada@example.com>",
            "\"Lovelace, Ada\" <ada@example.com>",
            "ada+tag@sub.example.co.uk",
        ] {
            assert!(parse_mailbox(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn shapes_the_mailer_cannot_send_are_refused() {
        for bad in [
            "Foo\r\nBcc: x <v@example.test>",
            "a@x, b@y <v@example.test>",
            "v@[127.0.0.1]",
            "Name <v@[127.0.0.1]>",
            "a@x.test, b@y.test",
            "undisclosed: a@x.test;",
            "not-an-email",
            "a\0@example.com",
            "Tab\there <v@example.test>",
            "",
            "<>",
        ] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(parse_mailbox(&long).is_err());
    }
}
