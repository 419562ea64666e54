//! Errors and warnings about a configuration file, each pointing at the file,
//! the line and the key, and saying how to fix it.

use std::fmt;

/// A value strait cannot run with. `reason` says what is wrong and, after
/// ` — `, what to write instead. A value is quoted only when it is not a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; `None` when the problem is a missing key.
    pub line: Option<usize>,
    /// The key as written in the file (`A->B.topics`), or as it should be
    /// written when it is missing. Empty for a line that is not an entry.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.file, self.line, &self.key)?;
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a file, in line order: strait reports them all at
/// once so that one edit fixes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// Neither MM2 nor strait knows the key (often a typo).
    UnknownKey,
    /// A key MM2 or Kafka Connect knows that strait has no use for, or that
    /// MM2 itself ignores where it is written.
    Ignored,
    /// An old spelling that still works.
    Deprecated,
    /// The same key twice; the later line wins, as in Java.
    Duplicate,
    /// Valid, but probably not what the author meant.
    Suspicious,
}

/// Something strait runs with but the author should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub kind: WarningKind,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_location(f, &self.file, self.line, &self.key)?;
        f.write_str(&self.message)
    }
}

fn write_location(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: Option<usize>,
    key: &str,
) -> fmt::Result {
    match line {
        Some(line) => write!(f, "{file}:{line}: ")?,
        None => write!(f, "{file}: ")?,
    }
    if !key.is_empty() {
        write!(f, "{key}: ")?;
    }
    Ok(())
}

/// Collects errors and warnings while a file is read.
#[derive(Debug)]
pub(crate) struct Diagnostics {
    file: String,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    /// (line, key as written, key it probably means) of unknown keys.
    misspellings: Vec<(usize, String, String)>,
}

impl Diagnostics {
    pub(crate) fn new(file: &str) -> Self {
        Diagnostics {
            file: file.to_string(),
            errors: Vec::new(),
            warnings: Vec::new(),
            misspellings: Vec::new(),
        }
    }

    /// Remembers that `written` on `line` probably means `meant`, so that an
    /// error about `meant` missing can point at it.
    pub(crate) fn misspelling(&mut self, line: usize, written: &str, meant: &str) {
        self.misspellings
            .push((line, written.to_string(), meant.to_string()));
    }

    pub(crate) fn error(&mut self, line: Option<usize>, key: &str, reason: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    pub(crate) fn warn(
        &mut self,
        kind: WarningKind,
        line: Option<usize>,
        key: &str,
        message: impl Into<String>,
    ) {
        self.warnings.push(ConfigWarning {
            file: self.file.clone(),
            line,
            key: key.to_string(),
            kind,
            message: message.into(),
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Sorted by line (missing keys last) and without repeats: a top-level
    /// or cluster value inherited by several flows is reported once.
    pub(crate) fn finish(self) -> (Vec<ConfigError>, Vec<ConfigWarning>) {
        let mut errors = self.errors;
        for error in errors.iter_mut().filter(|e| e.line.is_none()) {
            for (line, written, meant) in &self.misspellings {
                if *meant == error.key {
                    error.reason.push_str(&format!(
                        " (line {line} has {written}: is that it, misspelt?)"
                    ));
                }
            }
        }
        errors.sort_by_key(|e| (e.line.is_none(), e.line, e.key.clone()));
        errors.dedup();
        let mut warnings = self.warnings;
        warnings.sort_by_key(|w| (w.line.is_none(), w.line, w.key.clone()));
        warnings.dedup();
        (errors, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_display_one_per_line_with_file_line_and_key() {
        let mut diagnostics = Diagnostics::new("mm2.properties");
        diagnostics.error(None, "B.bootstrap.servers", "missing — add it");
        diagnostics.error(
            Some(12),
            "A.bootstrap.servers",
            "\"localhost\" is not host:port",
        );
        diagnostics.error(Some(3), "", "bad escape");
        diagnostics.error(
            Some(12),
            "A.bootstrap.servers",
            "\"localhost\" is not host:port",
        );
        let (errors, _) = diagnostics.finish();
        assert_eq!(
            ConfigErrors(errors).to_string(),
            "mm2.properties:3: bad escape\n\
             mm2.properties:12: A.bootstrap.servers: \"localhost\" is not host:port\n\
             mm2.properties: B.bootstrap.servers: missing — add it"
        );
    }

    #[test]
    fn a_missing_key_points_at_its_misspelling() {
        let mut diagnostics = Diagnostics::new("f");
        diagnostics.error(None, "b.bootstrap.servers", "missing");
        diagnostics.error(Some(2), "b.bootstrap.servers", "unrelated");
        diagnostics.misspelling(4, "B.bootstrap.servers", "b.bootstrap.servers");
        let (errors, _) = diagnostics.finish();
        assert_eq!(errors[0].reason, "unrelated");
        assert_eq!(
            errors[1].reason,
            "missing (line 4 has B.bootstrap.servers: is that it, misspelt?)"
        );
    }

    #[test]
    fn warnings_display_like_errors() {
        let mut diagnostics = Diagnostics::new("f");
        diagnostics.warn(WarningKind::UnknownKey, Some(7), "topic", "unknown key");
        let (_, warnings) = diagnostics.finish();
        assert_eq!(warnings[0].to_string(), "f:7: topic: unknown key");
        assert_eq!(warnings[0].kind, WarningKind::UnknownKey);
    }
}
