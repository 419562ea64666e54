//! A value that must never reach a log line or an error message.

use std::fmt;

/// A password, a JAAS configuration or a private key. `Debug` and `Display`
/// print `[redacted]`; only [`Secret::expose`] gives the text, at the one
/// place that sends it to a broker or a TLS library.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Kafka client keys whose values are secrets, wherever they appear
/// (`ssl.key.password`, `A.consumer.sasl.jaas.config`, ...).
pub fn is_secret_key(key: &str) -> bool {
    key.contains("password")
        || key.contains("jaas")
        || key.contains("secret")
        || key.ends_with("ssl.keystore.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn secret_keys_are_recognised_under_prefixes() {
        for key in [
            "sasl.jaas.config",
            "ssl.key.password",
            "consumer.ssl.truststore.password",
            "A.producer.ssl.keystore.key",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["ssl.keystore.location", "sasl.mechanism", "fetch.max.bytes"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
