//! The document says what the server sends: optional properties may be `null`.
//!
//! poem-openapi serializes an unset `Option` field as `null` but documents it only as "not
//! required", which in OpenAPI 3.0 means "may be absent", not "may be null". Clients generated
//! from the document, and schemathesis' response check, then reject real responses. This pass
//! marks every optional property `nullable`, once, where the document is produced.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A JSON document that keeps its keys in order, so the committed document only changes where
/// this pass changes it (`serde_json::Value` would sort every key).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
enum Value {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

type Map = IndexMap<String, Value>;

/// `spec` (the OpenAPI JSON) with every non-required property marked `nullable: true`.
pub fn mark_optional_properties_nullable(spec: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    visit(&mut document);
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

fn visit(value: &mut Value) {
    match value {
        Value::Object(object) => {
            mark_schema(object);
            object.values_mut().for_each(visit);
        }
        Value::Array(items) => items.iter_mut().for_each(visit),
        _ => {}
    }
}

/// Marks the optional properties of `object` when it is a schema with `properties`.
fn mark_schema(object: &mut Map) {
    let required: Vec<String> = match object.get("required") {
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|name| match name {
                Value::String(name) => Some(name.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Value::Object(schema) = property else {
            continue;
        };
        // In OpenAPI 3.0 a `$ref`'s siblings are ignored: wrap it so `nullable` counts.
        if let Some(reference) = schema.shift_remove("$ref") {
            let target = Map::from([("$ref".to_owned(), reference)]);
            schema.insert(
                "allOf".to_owned(),
                Value::Array(vec![Value::Object(target)]),
            );
        }
        schema.insert("nullable".to_owned(), Value::Bool(true));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn optional_properties_become_nullable_and_required_ones_do_not() {
        let spec = r##"{"components":{"schemas":{"A":{"type":"object","required":["id"],
            "properties":{"id":{"type":"string"},"note":{"type":"string"},
            "kind":{"$ref":"#/components/schemas/K","description":"d"}}}}}}"##;
        let out: Value = serde_json::from_str(&mark_optional_properties_nullable(spec)).unwrap();
        let properties = &out["components"]["schemas"]["A"]["properties"];
        assert_eq!(properties["id"].get("nullable"), None);
        assert_eq!(properties["note"]["nullable"], true);
        assert_eq!(properties["kind"]["nullable"], true);
        assert_eq!(
            properties["kind"]["allOf"][0]["$ref"],
            "#/components/schemas/K"
        );
        assert_eq!(properties["kind"]["description"], "d");
    }

    #[test]
    fn key_order_and_everything_else_are_kept() {
        let spec = r#"{"z":1,"a":[true,null,1.5,-2,"s"],"m":{"y":{},"b":[]}}"#;
        let out = mark_optional_properties_nullable(spec);
        let expected: Value = serde_json::from_str(spec).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
        assert!(out.find("\"z\"") < out.find("\"a\""), "{out}");
    }
}
