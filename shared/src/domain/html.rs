//! HTML written by tenants is shown in their users' browsers: it is sanitized on the way in so
//! stored XSS through a notification or chat message is impossible.

use std::sync::LazyLock;

pub use super::html_limits::{HtmlLimit, MAX_DEPTH, MAX_OPEN_FORMATTING, MAX_REOPENED_FORMATTING};
use super::html_limits::{check_input, check_output_depth};

/// Largest sanitized HTML stored (the input limit is smaller, but parsing can grow markup).
pub const SANITIZED_MAX_BYTES: usize = 256 * 1024;
/// Largest plain-text rendering computed from HTML (before the message is cut to its limit).
pub const TEXT_MAX_BYTES: usize = 256 * 1024;

/// ammonia's defaults already drop `<script>`, `<iframe>`, `<object>`, `<style>`, every `on*`
/// handler and `style` attribute, and `javascript:` URLs; links are additionally marked
/// `rel="noopener noreferrer"` so a notification cannot reach back into the opener window.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(base_sanitizer);

fn base_sanitizer() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder.link_rel(Some("noopener noreferrer"));
    builder
}

/// The same without `<img>`: an image a chat member sends is fetched by every other member's
/// client, telling the sender their IP addresses and when they read it.
static SANITIZER_WITHOUT_IMAGES: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = base_sanitizer();
    builder.rm_tags(["img"]);
    builder
});

/// Whether sanitized HTML keeps `<img>` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Images {
    Keep,
    Remove,
}

/// Why HTML was refused; the message completes "The htmlContent …".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlRejection {
    Limit(HtmlLimit),
    SanitizedTooLarge,
    TextTooLarge,
}

impl std::fmt::Display for HtmlRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Limit(limit) => limit.fmt(f),
            Self::SanitizedTooLarge => write!(
                f,
                "becomes more than {SANITIZED_MAX_BYTES} bytes once parsed and sanitized"
            ),
            Self::TextTooLarge => write!(
                f,
                "renders to more than {TEXT_MAX_BYTES} bytes of plain text"
            ),
        }
    }
}

/// Sanitizes HTML, refusing markup whose parse or stored form would be out of proportion to its
/// size. CPU-bound (milliseconds for the largest accepted input): call it off the async threads.
pub fn sanitize(html: &str, images: Images) -> Result<String, HtmlRejection> {
    check_input(html).map_err(HtmlRejection::Limit)?;
    let sanitizer = match images {
        Images::Keep => &SANITIZER,
        Images::Remove => &SANITIZER_WITHOUT_IMAGES,
    };
    let clean = sanitizer.clean(html).to_string();
    if clean.len() > SANITIZED_MAX_BYTES {
        return Err(HtmlRejection::SanitizedTooLarge);
    }
    check_output_depth(&clean).map_err(HtmlRejection::Limit)?;
    Ok(clean)
}

/// A plain-text rendering of HTML returned by [`sanitize`], for text-only clients and emails.
pub fn to_text(html: &str) -> Result<String, HtmlRejection> {
    // No decorations: `**bold**` markers would be noise in a plain-text inbox or email. No
    // combining strike-through marks either: one per character per nested `<s>`.
    let text = html2text::config::plain_no_decorate()
        .unicode_strikeout(false)
        .string_from_read(html.as_bytes(), usize::MAX)
        .unwrap_or_default();
    if text.len() > TEXT_MAX_BYTES {
        return Err(HtmlRejection::TextTooLarge);
    }
    Ok(text.trim().to_owned())
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
            let clean = sanitize(payload, Images::Keep)
                .unwrap()
                .to_ascii_lowercase();
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
            Images::Keep,
        )
        .unwrap();
        assert!(clean.contains("<strong>Saturday</strong>"));
        assert!(clean.contains("href=\"https://example.com\""));
        assert_eq!(to_text("<p>Hello <b>world</b></p>").unwrap(), "Hello world");
    }

    #[test]
    fn images_are_removed_on_request() {
        let html = "<p>hi<img src=\"https://tracker.example/p.gif\"></p>";
        assert!(sanitize(html, Images::Keep).unwrap().contains("<img"));
        assert_eq!(sanitize(html, Images::Remove).unwrap(), "<p>hi</p>");
    }

    #[test]
    fn hostile_shapes_are_refused_or_small() {
        for size in [16 * 1024, 64 * 1024, 100 * 1024] {
            let deep_strike = "<s>".repeat(size / 6) + &"x".repeat(size / 2);
            if let Ok(clean) = sanitize(&deep_strike, Images::Keep) {
                assert!(to_text(&clean).is_ok_and(|text| text.len() <= TEXT_MAX_BYTES));
            }
            let count = size / 20;
            let open: String = (0..count).map(|n| format!("<b title={n}>")).collect();
            let reopened = format!("<p>{open}</p>{}", "<p>x</p>".repeat(count));
            assert!(sanitize(&reopened, Images::Keep).is_err(), "{size}");
        }
    }
}
