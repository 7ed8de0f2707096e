//! Parsing the plugin configuration into the author's type.
//!
//! The SDK reads the configuration (buffer 7) once, in `proxy_on_configure`, and parses it as JSON into
//! [`Plugin::Config`](crate::Plugin::Config) with [`parse`]. When that fails it logs, at error, what is wrong and
//! where (serde_json's message with line and column), and refuses the configuration, so Weir does not start and
//! shows that line.

use std::fmt;

use serde::de::DeserializeOwned;

/// Why a configuration was refused: serde_json's message, with its line and column.
#[derive(Debug)]
pub struct ConfigError {
    /// The type the configuration was parsed into.
    pub type_name: &'static str,
    /// What serde_json said.
    pub error: serde_json::Error,
    /// Whether the configuration was empty (parsed as `{}`, then as `null`).
    pub empty: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.empty { "empty configuration" } else { "invalid configuration" };
        write!(f, "{what} for {}: {}", self.type_name, self.error)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a configuration as JSON into `T`.
///
/// An empty (or all-whitespace) configuration is parsed as `{}`, so a struct whose fields all have defaults
/// accepts it, and if that fails as `null`, so `()` and `Option<_>` accept it.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Config { issuer: String }
///
/// let config: Config = weir_sdk::config::parse(br#"{"issuer": "https://id.example.com"}"#).unwrap();
/// assert_eq!(config.issuer, "https://id.example.com");
///
/// let error = weir_sdk::config::parse::<Config>(b"{\n  \"issuer\": 7\n}").unwrap_err();
/// assert!(error.to_string().ends_with("invalid type: integer `7`, expected a string at line 2 column 13"), "{error}");
/// ```
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let type_name = std::any::type_name::<T>();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}")
            .or_else(|error| serde_json::from_slice(b"null").map_err(|_| error))
            .map_err(|error| ConfigError { type_name, error, empty: true });
    }
    serde_json::from_slice(bytes).map_err(|error| ConfigError { type_name, error, empty: false })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Strict {
        issuer: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Lenient {
        limit: u32,
    }

    #[test]
    fn empty_configurations_parse_as_an_empty_object_then_null() {
        assert_eq!(parse::<Lenient>(b"").unwrap(), Lenient { limit: 0 });
        assert_eq!(parse::<Lenient>(b" \n").unwrap(), Lenient { limit: 0 });
        parse::<()>(b"").unwrap();
        assert_eq!(parse::<Option<Strict>>(b"").unwrap(), None);
        let error = parse::<Strict>(b"").unwrap_err();
        assert!(error.to_string().starts_with("empty configuration for "), "{error}");
        assert!(error.to_string().contains("missing field `issuer`"), "{error}");
    }

    #[test]
    fn errors_name_the_type_the_problem_and_the_place() {
        let table: &[(&[u8], &str)] = &[
            (b"{\"issuer\": 1}", "invalid type: integer `1`, expected a string at line 1 column 12"),
            (b"{\"issuer\": \"a\",}", "trailing comma at line 1 column 16"),
            (b"not json", "expected ident at line 1 column 2"),
            (b"{}", "missing field `issuer` at line 1 column 2"),
        ];
        for &(input, expected) in table {
            let error = parse::<Strict>(input).unwrap_err().to_string();
            assert!(error.starts_with("invalid configuration for weir_sdk::config::tests::Strict: "), "{error}");
            assert!(error.ends_with(expected), "{input:?}: {error}");
        }
    }
}
