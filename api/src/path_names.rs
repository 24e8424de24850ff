//! Real names for path parameters in error messages.
//!
//! poem-openapi reports a path parameter that fails to parse as `param0`, `param1`, … (its
//! internal route names). Clients deserve `tenantId` or `id`, so this module matches the request
//! path against the route templates of the OpenAPI document and looks the name up.

use std::sync::OnceLock;

enum Segment {
    Literal(String),
    Param(String),
}

fn templates() -> &'static [Vec<Segment>] {
    static TEMPLATES: OnceLock<Vec<Vec<Segment>>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let spec: serde_json::Value =
            serde_json::from_str(&crate::openapi_json()).unwrap_or_default();
        let paths: Vec<String> = spec["paths"]
            .as_object()
            .map(|paths| paths.keys().cloned().collect())
            .unwrap_or_default();
        paths.iter().map(|path| parse(path)).collect()
    })
}

fn parse(template: &str) -> Vec<Segment> {
    template
        .trim_matches('/')
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            },
        )
        .collect()
}

/// The documented name of path parameter `internal` (`param0`, …) for a request to `path`.
pub fn resolve(internal: &str, path: &str) -> Option<String> {
    let index: usize = internal.strip_prefix("param")?.parse().ok()?;
    matching_template(path)?
        .iter()
        .filter_map(|segment| match segment {
            Segment::Param(name) => Some(name.clone()),
            Segment::Literal(_) => None,
        })
        .nth(index)
}

/// The documented name of the path parameter at segment `index` (0-based, after the leading
/// `/`) of a request to `path`; `None` when that segment is a literal or no route matches.
pub fn name_of_segment(path: &str, index: usize) -> Option<String> {
    match matching_template(path)?.get(index)? {
        Segment::Param(name) => Some(name.clone()),
        Segment::Literal(_) => None,
    }
}

fn matching_template(path: &str) -> Option<&'static [Segment]> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    templates()
        .iter()
        .filter(|template| template.len() == segments.len())
        .filter(|template| {
            template
                .iter()
                .zip(&segments)
                .all(|(expected, actual)| match expected {
                    Segment::Literal(literal) => literal == actual,
                    Segment::Param(_) => true,
                })
        })
        // Prefer the template with the most literal matches (`/read-all` over `/{id}`).
        .max_by_key(|template| {
            template
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count()
        })
        .map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
    #[test]
    fn internal_names_resolve_to_documented_ones() {
        let path = "/tenant/not-a-uuid/v1/Auth/token-exchange";
        assert_eq!(super::resolve("param0", path).as_deref(), Some("tenantId"));
        assert_eq!(super::resolve("param1", path), None);
        assert_eq!(super::resolve("param0", "/elsewhere"), None);
        assert_eq!(super::name_of_segment(path, 1).as_deref(), Some("tenantId"));
        assert_eq!(super::name_of_segment(path, 0), None);
    }
}
