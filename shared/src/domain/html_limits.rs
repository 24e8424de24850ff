//! Work bounds for tenant HTML. html5ever's tree builder is quadratic in nesting depth (scope
//! checks walk the stack of open elements) and re-opens every unclosed formatting element in
//! each later block (a 10 KB body can become 5 MB); html2text is superlinear in depth (nested
//! tables). So raw input is first scanned with html5ever's linear tokenizer, which estimates
//! both costs without building a tree, and the sanitized output is measured exactly.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer,
};
use html5ever::{Attribute, LocalName};

/// Deepest element nesting kept in stored HTML.
pub const MAX_DEPTH: usize = 64;
/// Deepest nesting the raw-input scan lets through to the parser: looser than [`MAX_DEPTH`]
/// because the scan only approximates the parser's implied end tags; the exact limit applies to
/// the sanitized output.
const MAX_RAW_DEPTH: usize = 2 * MAX_DEPTH;
/// Most formatting elements (`<b>`, `<font>`, `<a>`…) left open at once.
pub const MAX_OPEN_FORMATTING: usize = 64;
/// Most formatting elements the parser may have to re-open in total (open formatting elements
/// × blocks after them): beyond it the parsed tree is large however small the input.
pub const MAX_REOPENED_FORMATTING: usize = 20_000;

/// Why HTML was refused; the message completes "The htmlContent …".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlLimit {
    TooDeep,
    TooManyOpenFormatting,
    TooMuchReopening,
}

impl std::fmt::Display for HtmlLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooDeep => write!(f, "nests elements more than {MAX_DEPTH} deep"),
            Self::TooManyOpenFormatting => write!(
                f,
                "leaves more than {MAX_OPEN_FORMATTING} formatting elements unclosed"
            ),
            Self::TooMuchReopening => write!(
                f,
                "leaves formatting elements unclosed across too many blocks \
                 (close <b>, <i>, <font>… where they end)"
            ),
        }
    }
}

/// Checks raw input before it is parsed.
pub fn check_input(html: &str) -> Result<(), HtmlLimit> {
    scan(html, InputScan::default()).refused.map_or(Ok(()), Err)
}

/// Checks sanitized output (well formed: every element is closed) for its exact depth.
pub fn check_output_depth(html: &str) -> Result<(), HtmlLimit> {
    let scan = scan(html, DepthScan::default());
    if scan.max_depth > MAX_DEPTH {
        return Err(HtmlLimit::TooDeep);
    }
    Ok(())
}

trait Scan: Default {
    fn token(&mut self, token: Token);
}

struct Sink<S>(RefCell<S>);

impl<S: Scan> TokenSink for Sink<S> {
    type Handle = ();
    fn process_token(&self, token: Token, _line_number: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().token(token);
        TokenSinkResult::Continue
    }
}

fn scan<S: Scan>(html: &str, state: S) -> S {
    let tokenizer = Tokenizer::new(Sink(RefCell::new(state)), Default::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.into_inner()
}

/// Elements that never have content (no end tag).
fn is_void(name: &LocalName) -> bool {
    matches!(
        &**name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
            | "param"
            | "keygen"
            | "frame"
    )
}

/// The HTML "formatting elements": kept in the list of active formatting elements and re-opened
/// by the parser after a block closes them.
fn is_formatting(name: &LocalName) -> bool {
    matches!(
        &**name,
        "a" | "b"
            | "big"
            | "code"
            | "em"
            | "font"
            | "i"
            | "nobr"
            | "s"
            | "small"
            | "strike"
            | "strong"
            | "tt"
            | "u"
    )
}

/// Elements whose end tag may be omitted: a second one closes the first.
fn closes_its_kind(name: &LocalName) -> bool {
    matches!(
        &**name,
        "p" | "li"
            | "dd"
            | "dt"
            | "option"
            | "optgroup"
            | "tr"
            | "td"
            | "th"
            | "thead"
            | "tbody"
            | "tfoot"
            | "rb"
            | "rt"
            | "rp"
            | "rtc"
    )
}

/// A sorted copy of the attributes, so `<b a=1 c=2>` and `<b c=2 a=1>` compare equal.
fn attribute_key(attrs: &[Attribute]) -> Vec<(String, String)> {
    let mut key: Vec<_> = attrs
        .iter()
        .map(|attr| (attr.name.local.to_string(), attr.value.to_string()))
        .collect();
    key.sort_unstable();
    key
}

/// Simulates the parser's stack of open elements and list of active formatting elements,
/// erring towards larger figures: it never sees implied end tags other than an element closing
/// its own kind across formatting elements, so a sloppy document can only look deeper.
#[derive(Default)]
struct InputScan {
    stack: Vec<LocalName>,
    formatting: Vec<(LocalName, Vec<(String, String)>)>,
    /// Whether something closed since the last re-opening point: the parser re-opens any
    /// formatting element no longer on its stack before the next text or element.
    closed_since: bool,
    reopened: usize,
    refused: Option<HtmlLimit>,
}

impl InputScan {
    fn start(&mut self, tag: Tag) {
        if self.closed_since {
            self.closed_since = false;
            self.reopened += self.formatting.len();
            if self.reopened > MAX_REOPENED_FORMATTING {
                self.refused = Some(HtmlLimit::TooMuchReopening);
                return;
            }
        }
        if is_void(&tag.name) || tag.self_closing {
            return;
        }
        if closes_its_kind(&tag.name)
            && let Some(at) = self.stack.iter().rposition(|open| *open == tag.name)
            && self.stack[at + 1..].iter().all(is_formatting)
        {
            self.stack.truncate(at);
        }
        if !is_formatting(&tag.name) {
            // A block start closes an open paragraph and the formatting inside it.
            self.closed_since = true;
        } else {
            let key = attribute_key(&tag.attrs);
            // The parser's "Noah's Ark" clause: at most three identical entries.
            let same: Vec<usize> = (0..self.formatting.len())
                .filter(|&at| self.formatting[at].0 == tag.name && self.formatting[at].1 == key)
                .collect();
            if same.len() >= 3 {
                self.formatting.remove(same[0]);
            }
            self.formatting.push((tag.name.clone(), key));
            if self.formatting.len() > MAX_OPEN_FORMATTING {
                self.refused = Some(HtmlLimit::TooManyOpenFormatting);
                return;
            }
        }
        self.stack.push(tag.name);
        if self.stack.len() > MAX_RAW_DEPTH {
            self.refused = Some(HtmlLimit::TooDeep);
        }
    }

    fn end(&mut self, tag: Tag) {
        if let Some(at) = self.stack.iter().rposition(|open| *open == tag.name) {
            self.stack.truncate(at);
        }
        if is_formatting(&tag.name)
            && let Some(at) = self
                .formatting
                .iter()
                .rposition(|(name, _)| *name == tag.name)
        {
            self.formatting.remove(at);
        }
        self.closed_since = true;
    }
}

impl Scan for InputScan {
    fn token(&mut self, token: Token) {
        if self.refused.is_some() {
            return;
        }
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => self.start(tag),
            Token::TagToken(tag) => self.end(tag),
            Token::CharacterTokens(_) if self.closed_since => {
                self.closed_since = false;
                self.reopened += self.formatting.len();
                if self.reopened > MAX_REOPENED_FORMATTING {
                    self.refused = Some(HtmlLimit::TooMuchReopening);
                }
            }
            _ => {}
        }
    }
}

/// The exact depth of well-formed HTML.
#[derive(Default)]
struct DepthScan {
    depth: usize,
    max_depth: usize,
}

impl Scan for DepthScan {
    fn token(&mut self, token: Token) {
        match token {
            Token::TagToken(tag)
                if tag.kind == TagKind::StartTag && !is_void(&tag.name) && !tag.self_closing =>
            {
                self.depth += 1;
                self.max_depth = self.max_depth.max(self.depth);
            }
            Token::TagToken(tag) if tag.kind == TagKind::EndTag => {
                self.depth = self.depth.saturating_sub(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, depth: usize) -> String {
        open.repeat(depth) + "x"
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        assert_eq!(
            check_input(&nested("<div>", 5_000)),
            Err(HtmlLimit::TooDeep)
        );
        assert_eq!(
            check_input(&nested("<dd><li>", 2_000)),
            Err(HtmlLimit::TooDeep)
        );
        assert_eq!(check_input(&nested("<div>", 40)), Ok(()));
    }

    #[test]
    fn sloppy_but_flat_markup_passes() {
        assert_eq!(check_input(&"<p>para".repeat(5_000)), Ok(()));
        assert_eq!(check_input(&"<li><b>item".repeat(5_000)), Ok(()));
        // Unclosed fonts really do nest in the parsed tree.
        assert_eq!(
            check_input(&"<font face=x>".repeat(5_000)),
            Err(HtmlLimit::TooDeep)
        );
        let balanced = "<p><b>bold</b> and <i>it</i></p>".repeat(3_000);
        assert_eq!(check_input(&balanced), Ok(()));
    }

    #[test]
    fn formatting_left_open_across_blocks_is_refused() {
        let open: String = (0..500).map(|n| format!("<b title={n}>")).collect();
        let hostile = format!("<p>{open}</p>{}", "<p>x</p>".repeat(500));
        assert_eq!(check_input(&hostile), Err(HtmlLimit::TooManyOpenFormatting));
        let open: String = (0..60).map(|n| format!("<b title={n}>")).collect();
        let hostile = format!("<p>{open}</p>{}", "<p>x</p>".repeat(1_000));
        assert_eq!(check_input(&hostile), Err(HtmlLimit::TooMuchReopening));
    }

    #[test]
    fn output_depth_is_exact() {
        let html = "<div>".repeat(MAX_DEPTH) + &"</div>".repeat(MAX_DEPTH);
        assert_eq!(check_output_depth(&html), Ok(()));
        let html = "<div>".repeat(MAX_DEPTH + 1) + "<br>" + &"</div>".repeat(MAX_DEPTH + 1);
        assert_eq!(check_output_depth(&html), Err(HtmlLimit::TooDeep));
    }
}
