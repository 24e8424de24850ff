//! HTML written by tenants is shown in their users' browsers: it is sanitized on the way in so
//! stored XSS through a notification or chat message is impossible.

use std::sync::LazyLock;

/// ammonia's defaults already drop `<script>`, `<iframe>`, `<object>`, `<style>`, every `on*`
/// handler and `style` attribute, and `javascript:` URLs; links are additionally marked
/// `rel="noopener noreferrer"` so a notification cannot reach back into the opener window.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder.link_rel(Some("noopener noreferrer"));
    builder
});

pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// A plain-text rendering of (sanitized) HTML, for text-only clients and emails.
pub fn to_text(html: &str) -> String {
    // No decorations: `**bold**` markers would be noise in a plain-text inbox or email.
    html2text::config::plain_no_decorate()
        .string_from_read(html.as_bytes(), usize::MAX)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Text made safe to embed in HTML element content.
pub fn escape(text: &str) -> String {
    html_escape::encode_text(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangerous_markup_never_survives() {
        let payloads = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil\"></iframe>",
            "<object data=\"evil.swf\"></object>",
            "<div style=\"background:url(javascript:alert(1));width:expression(alert(1))\">x</div>",
            "<svg onload=alert(1)>",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<style>body{background:url(javascript:alert(1))}</style>",
        ];
        for payload in payloads {
            let clean = sanitize(payload).to_ascii_lowercase();
            for needle in [
                "<script",
                "onerror",
                "onload",
                "javascript:",
                "<iframe",
                "<object",
                "style=",
                "<style",
                "expression(",
            ] {
                assert!(!clean.contains(needle), "{payload} → {clean}");
            }
        }
    }

    #[test]
    fn ordinary_formatting_is_kept() {
        let clean = sanitize(
            "<p>Maintenance <strong>Saturday</strong> <a href=\"https://example.com\">details</a></p>",
        );
        assert!(clean.contains("<strong>Saturday</strong>"));
        assert!(clean.contains("href=\"https://example.com\""));
        assert_eq!(to_text("<p>Hello <b>world</b></p>"), "Hello world");
    }
}
