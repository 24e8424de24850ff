//! HTML bodies shaped to make a parser or text renderer do work out of proportion to their
//! size, for the content-bounds tests and the `hostile_html` benchmark.

/// `<s>` nested a sixth of `bytes` deep around text: html2text's cost grew with depth × text.
pub fn deep_strike(bytes: usize) -> String {
    "<s>".repeat(bytes / 6) + &"x".repeat(bytes / 2)
}

/// One paragraph opening distinct `<b>`s it never closes, then as many paragraphs: the parser
/// re-opens every one of them in each paragraph (10 KB became 5 MB).
pub fn reopened_bold(bytes: usize) -> String {
    let count = bytes / 24;
    let open: String = (0..count).map(|n| format!("<b title={n}>")).collect();
    format!("<p>{open}</p>{}", "<p>x</p>".repeat(count))
}

/// Ordinary markup of about `bytes`, for the baseline.
pub fn plain(bytes: usize) -> String {
    "<p>Your order <b>shipped</b>; see <a href=\"https://example.com\">details</a>.</p>"
        .repeat(bytes / 80)
}

/// Each hostile shape at each size named in the issue (16, 64 and 100 KB), labelled.
pub fn hostile_bodies() -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    for kib in [16, 64, 100] {
        // Just under the 100 KB input limit at the top size.
        let bytes = (kib * 1024).min(100 * 1024 - 64);
        bodies.push((format!("deep <s> {kib} KB"), deep_strike(bytes)));
        bodies.push((format!("re-opened <b> {kib} KB"), reopened_bold(bytes)));
    }
    bodies
}
