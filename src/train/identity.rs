//! Content hashes of configurations: canonical JSON (object keys sorted at every level, no
//! whitespace) → SHA-256 hex. Two values that serialise to the same JSON get the same hash,
//! whatever the field order of their structs or maps.

use serde::Serialize;
use serde_json::Value;

use crate::dataset::hex;
use crate::{Error, Result};

/// Version tag hashed with every identity; bump it when the identity recipe changes.
pub const RUN_IDENTITY_VERSION: &str = "gps-ssl-run-v1";

/// `value` as canonical JSON: objects with their keys sorted, at every depth, no whitespace.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    let value = serde_json::to_value(value)
        .map_err(|e| Error::invalid("run configuration", format!("not serialisable: {e}")))?;
    let mut out = String::new();
    write_canonical(&value, &mut out);
    Ok(out)
}

/// Lowercase hex SHA-256 of [`canonical_json`]`(value)`.
pub fn canonical_hash<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    Ok(hex(&crate::dataset::sha256(
        canonical_json(value)?.as_bytes(),
    )))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The dotted paths (`data.batch_size`, `optimizer.momentum`) where two serialised values differ,
/// each with both values: `(path, left, right)`. Empty when they are equal.
pub fn differences<A: Serialize + ?Sized, B: Serialize + ?Sized>(
    left: &A,
    right: &B,
) -> Result<Vec<(String, String, String)>> {
    let l = serde_json::to_value(left)
        .map_err(|e| Error::invalid("run configuration", format!("not serialisable: {e}")))?;
    let r = serde_json::to_value(right)
        .map_err(|e| Error::invalid("run configuration", format!("not serialisable: {e}")))?;
    let mut out = Vec::new();
    diff(String::new(), &l, &r, &mut out);
    Ok(out)
}

fn diff(path: String, l: &Value, r: &Value, out: &mut Vec<(String, String, String)>) {
    match (l, r) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let null = Value::Null;
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff(
                    sub,
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if l == r => {}
        _ => out.push((path, l.to_string(), r.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": 0.5}});
        let b = json!({"a": {"x": 0.5, "y": [1, 2]}, "b": 1});
        assert_eq!(
            canonical_json(&a).unwrap(),
            r#"{"a":{"x":0.5,"y":[1,2]},"b":1}"#
        );
        assert_eq!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
        assert_eq!(canonical_hash(&a).unwrap().len(), 64);
    }

    #[test]
    fn any_value_change_changes_the_hash_and_is_named() {
        let a = json!({"epochs": 2, "data": {"k": 5, "aug": "rhflip"}});
        let b = json!({"epochs": 3, "data": {"k": 5, "aug": "rhflip"}});
        let c = json!({"epochs": 2, "data": {"k": 4, "aug": "rhflip"}});
        assert_ne!(canonical_hash(&a).unwrap(), canonical_hash(&b).unwrap());
        assert_ne!(canonical_hash(&a).unwrap(), canonical_hash(&c).unwrap());
        assert_eq!(
            differences(&a, &c).unwrap(),
            vec![("data.k".to_string(), "5".to_string(), "4".to_string())]
        );
        assert!(differences(&a, &a).unwrap().is_empty());
    }
}
