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

/// Builds a body of about the given number of bytes.
pub type Shape = fn(usize) -> String;

/// The hostile shapes, labelled.
pub const SHAPES: [(&str, Shape); 2] =
    [("deep <s>", deep_strike), ("re-opened <b>", reopened_bold)];

/// The sizes named in the issue (16, 64 and 100 KB) as `(KB, bytes)`: the top one just under the
/// 100 KB input limit, so it is checked rather than refused for its length.
pub fn sizes() -> [(usize, usize); 3] {
    [16, 64, 100].map(|kib| (kib, (kib * 1024).min(100 * 1024 - 64)))
}

/// Each hostile shape at each size, labelled.
pub fn hostile_bodies() -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    for (kib, bytes) in sizes() {
        for (shape, build) in SHAPES {
            bodies.push((format!("{shape} {kib} KB"), build(bytes)));
        }
    }
    bodies
}
