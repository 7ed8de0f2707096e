//! What a verified token adds to the request: chosen claims and the consumer identity as headers, and the
//! consumer as the stream property `weir.consumer`.

use serde_json::Value;
use weir_sdk::http::Headers;
use weir_sdk::property;

/// The stream property holding the consumer identity, for later filters: one segment (Envoy, and Weir like
/// it, reads a set property back by its first segment only).
pub const CONSUMER_PROPERTY: &[&str] = &["weir.consumer"];

/// The longest header value written; a longer claim is left out.
const MAX_VALUE_BYTES: usize = 4096;

/// A claim as a header value: strings as they are, arrays of strings joined with `,`, other values as compact
/// JSON; `None` when absent, null, too long, or holding control characters (no header injection).
pub fn header_value(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
        }
        other => other.to_string(),
    };
    let clean = text.len() <= MAX_VALUE_BYTES && !text.chars().any(char::is_control);
    clean.then_some(text)
}

/// Writes the claim headers and the consumer (`(header, name)`) to `headers` (their incoming copies were
/// removed before), and the consumer as the `weir.consumer` property.
pub fn apply<'a>(headers: Headers, claims: impl Iterator<Item = (&'a str, &'a str)>, consumer: Option<(&str, &str)>) {
    for (header, value) in claims {
        headers.set(header, value);
    }
    if let Some((header, name)) = consumer {
        headers.set(header, name);
        // Also as the stream property `weir.consumer`, which a client cannot send (the quota filter reads it).
        if let Err(status) = property::set_bytes(CONSUMER_PROPERTY, name.as_bytes()) {
            log::warn!("jwt-auth: cannot set the `weir.consumer` property: {status:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn renders_claims_as_header_values() {
        let long = "x".repeat(5000);
        let table = [
            (json!("ada"), Some("ada")),
            (json!(42), Some("42")),
            (json!(true), Some("true")),
            (json!(["a", "b"]), Some("a,b")),
            (json!({"k": 1}), Some(r#"{"k":1}"#)),
            (json!(null), None),
            (json!("a\r\nx-admin: 1"), None),
            (json!(long), None),
        ];
        for (value, want) in table {
            assert_eq!(super::header_value(Some(&value)).as_deref(), want, "{value}");
        }
    }
}
