//! Java `.properties` files, read as `java.util.Properties.load(InputStream)`
//! reads them (which is how MirrorMaker 2 reads its configuration), with the
//! line number of every entry so that errors can point at it.
//!
//! Two deliberate differences from Java, both reported instead of guessed:
//! a backslash continuation on the last line of the file, and a malformed
//! `\uXXXX` escape (Java drops the first silently and throws a bare
//! exception without a line for the second).

use indexmap::IndexMap;

/// One `key = value` entry. `line` is the 1-based line where the entry starts
/// (an entry continued with `\` spans several lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// A key written twice: like Java, the later line wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    pub key: String,
    pub overridden_line: usize,
    pub winning_line: usize,
}

/// The entries of a file, one per key, in the order of their winning lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    pub entries: Vec<Property>,
    pub duplicates: Vec<DuplicateKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error(
        "this line ends with a backslash, so the entry continues on the next line, but the file ends there — remove the trailing backslash or add the missing line"
    )]
    UnterminatedContinuation { line: usize },
    #[error(
        "\"{escape}\" is not a \\uXXXX escape with four hex digits — write four hex digits (e.g. \\u00e9), or \\\\u for a backslash followed by u"
    )]
    MalformedUnicodeEscape { line: usize, escape: String },
    #[error(
        "\"{escape}\" is half of a UTF-16 surrogate pair — write the whole pair (e.g. \\ud83d\\ude00) or the character itself"
    )]
    LoneSurrogate { line: usize, escape: String },
}

impl SyntaxError {
    pub fn line(&self) -> usize {
        match self {
            SyntaxError::UnterminatedContinuation { line }
            | SyntaxError::MalformedUnicodeEscape { line, .. }
            | SyntaxError::LoneSurrogate { line, .. } => *line,
        }
    }
}

/// Java's `Properties.load(InputStream)` reads ISO-8859-1: every byte is one
/// character. Reading the same way keeps strait's values identical to MM2's.
pub fn decode_iso_8859_1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// 1-based numbers of the lines that hold bytes outside ASCII.
pub fn lines_with_non_ascii(bytes: &[u8]) -> Vec<usize> {
    let mut lines = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if !line.is_ascii() {
            lines.push(index + 1);
        }
    }
    lines
}

/// Parses the text of a `.properties` file. Syntax errors do not stop the
/// parse: every one is returned, and the entries that parsed are kept.
pub fn parse(text: &str) -> (Properties, Vec<SyntaxError>) {
    let mut errors = Vec::new();
    let mut winners: IndexMap<String, Property> = IndexMap::new();
    let mut duplicates = Vec::new();

    for logical in logical_lines(text, &mut errors) {
        let Some(property) = split_entry(&logical, &mut errors) else {
            continue;
        };
        if let Some(previous) = winners.shift_remove(&property.key) {
            duplicates.push(DuplicateKey {
                key: property.key.clone(),
                overridden_line: previous.line,
                winning_line: property.line,
            });
        }
        winners.insert(property.key.clone(), property);
    }

    let properties = Properties {
        entries: winners.into_values().collect(),
        duplicates,
    };
    (properties, errors)
}

/// A logical line: physical lines joined at their continuation backslashes,
/// escapes not yet decoded.
struct LogicalLine {
    text: String,
    line: usize,
}

fn is_java_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn physical_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(end) => {
                lines.push(&rest[..end]);
                let after = if rest[end..].starts_with("\r\n") {
                    end + 2
                } else {
                    end + 1
                };
                rest = &rest[after..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// An odd number of trailing backslashes continues the line; an even number
/// is a run of escaped backslashes.
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

fn logical_lines(text: &str, errors: &mut Vec<SyntaxError>) -> Vec<LogicalLine> {
    let physical = physical_lines(text);
    let mut logical = Vec::new();
    let mut index = 0;
    while index < physical.len() {
        let start_line = index + 1;
        let content = physical[index].trim_start_matches(is_java_whitespace);
        index += 1;
        if content.is_empty() || content.starts_with(['#', '!']) {
            continue;
        }
        let mut joined = String::new();
        let mut current = content;
        loop {
            if !ends_with_continuation(current) {
                joined.push_str(current);
                break;
            }
            joined.push_str(&current[..current.len() - 1]);
            match physical.get(index) {
                Some(next) => {
                    index += 1;
                    // The continuation's leading whitespace is not part of
                    // the value; a blank continuation line ends the entry.
                    current = next.trim_start_matches(is_java_whitespace);
                }
                None => {
                    errors.push(SyntaxError::UnterminatedContinuation { line: index });
                    break;
                }
            }
        }
        logical.push(LogicalLine {
            text: joined,
            line: start_line,
        });
    }
    logical
}

/// Splits at the first unescaped `=`, `:` or whitespace, as Java does, and
/// decodes the escapes of both halves.
fn split_entry(logical: &LogicalLine, errors: &mut Vec<SyntaxError>) -> Option<Property> {
    let text = logical.text.as_str();
    let mut key_end = text.len();
    let mut value_start = text.len();
    let mut has_separator = false;
    let mut escaped = false;
    for (position, c) in text.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = position;
            value_start = position + 1;
            has_separator = true;
            break;
        }
        if !escaped && is_java_whitespace(c) {
            key_end = position;
            value_start = position + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let mut value_text = &text[value_start..];
    loop {
        value_text = value_text.trim_start_matches(is_java_whitespace);
        if !has_separator && value_text.starts_with(['=', ':']) {
            has_separator = true;
            value_text = &value_text[1..];
        } else {
            break;
        }
    }
    let key = unescape(&text[..key_end], logical.line, errors)?;
    let value = unescape(value_text, logical.line, errors)?;
    Some(Property {
        key,
        value,
        line: logical.line,
    })
}

fn unescape(raw: &str, line: usize, errors: &mut Vec<SyntaxError>) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    let mut pending_high_surrogate: Option<(u16, String)> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            if let Some((_, escape)) = pending_high_surrogate.take() {
                errors.push(SyntaxError::LoneSurrogate { line, escape });
                return None;
            }
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            // Only reachable through an unterminated continuation, which is
            // reported already; Java drops the backslash too.
            break;
        };
        if escaped != 'u' {
            if let Some((_, escape)) = pending_high_surrogate.take() {
                errors.push(SyntaxError::LoneSurrogate { line, escape });
                return None;
            }
            out.push(match escaped {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\u{c}',
                other => other,
            });
            continue;
        }
        let digits: String = chars.by_ref().take(4).collect();
        let escape = format!("\\u{digits}");
        let unit = match (digits.len(), u16::from_str_radix(&digits, 16)) {
            (4, Ok(unit)) if digits.chars().all(|d| d.is_ascii_hexdigit()) => unit,
            _ => {
                errors.push(SyntaxError::MalformedUnicodeEscape { line, escape });
                return None;
            }
        };
        match pending_high_surrogate.take() {
            Some((high, high_escape)) => match char::decode_utf16([high, unit]).next() {
                Some(Ok(pair)) => out.push(pair),
                _ => {
                    errors.push(SyntaxError::LoneSurrogate {
                        line,
                        escape: high_escape,
                    });
                    return None;
                }
            },
            None if (0xD800..0xDC00).contains(&unit) => {
                pending_high_surrogate = Some((unit, escape));
            }
            None => match char::from_u32(u32::from(unit)) {
                Some(decoded) => out.push(decoded),
                None => {
                    errors.push(SyntaxError::LoneSurrogate { line, escape });
                    return None;
                }
            },
        }
    }
    if let Some((_, escape)) = pending_high_surrogate {
        errors.push(SyntaxError::LoneSurrogate { line, escape });
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, usize)> {
        let (properties, errors) = parse(text);
        assert!(errors.is_empty(), "unexpected errors: {errors:?}");
        properties
            .entries
            .into_iter()
            .map(|p| (p.key, p.value, p.line))
            .collect()
    }

    fn one(text: &str) -> (String, String) {
        let mut all = entries(text);
        assert_eq!(all.len(), 1, "{all:?}");
        let (key, value, _) = all.remove(0);
        (key, value)
    }

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn separators_follow_java() {
        let cases = [
            ("a=b", pair("a", "b")),
            ("a = b", pair("a", "b")),
            ("a:b", pair("a", "b")),
            ("a : b", pair("a", "b")),
            ("a b", pair("a", "b")),
            ("a\t\tb", pair("a", "b")),
            ("   a = b", pair("a", "b")),
            ("a = = b", pair("a", "= b")),
            ("a  =b", pair("a", "b")),
            ("a :=b", pair("a", "=b")),
            ("a", pair("a", "")),
            ("a=", pair("a", "")),
            ("a = b   ", pair("a", "b   ")),
            ("a=b=c", pair("a", "b=c")),
            ("key.with:colon", pair("key.with", "colon")),
            ("a->b.enabled = true", pair("a->b.enabled", "true")),
        ];
        for (text, expected) in cases {
            assert_eq!(one(text), expected, "{text:?}");
        }
    }

    #[test]
    fn escapes_follow_java() {
        let cases = [
            (r"a\=b = c", pair("a=b", "c")),
            (r"a\:b = c", pair("a:b", "c")),
            (r"a\ b = c", pair("a b", "c")),
            (r"k = a\tb", pair("k", "a\tb")),
            (r"k = a\nb", pair("k", "a\nb")),
            (r"k = a\rb\fc", pair("k", "a\rb\u{c}c")),
            (r"k = \u00e9t\u00E9", pair("k", "été")),
            (r"k = \ud83d\ude00", pair("k", "😀")),
            (r"k = C:\\dir\\file", pair("k", r"C:\dir\file")),
            (r"k = \q\#", pair("k", "q#")),
            (r"k = \ leading", pair("k", " leading")),
            ("k = a # not a comment", pair("k", "a # not a comment")),
        ];
        for (text, expected) in cases {
            assert_eq!(one(text), expected, "{text:?}");
        }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# comment\n! bang comment\n   # indented\n\n \t \nk = v\n";
        assert_eq!(entries(text), vec![("k".into(), "v".into(), 6)]);
    }

    #[test]
    fn a_comment_does_not_continue() {
        let text = "# comment \\\nk = v\n";
        assert_eq!(entries(text), vec![("k".into(), "v".into(), 2)]);
    }

    #[test]
    fn continuations_join_lines_and_drop_leading_whitespace() {
        let text = "topics = a, \\\n      b, \\\n   c\nnext = 1\n";
        assert_eq!(
            entries(text),
            vec![
                ("topics".into(), "a, b, c".into(), 1),
                ("next".into(), "1".into(), 4),
            ]
        );
    }

    #[test]
    fn a_continued_line_starting_with_hash_is_content() {
        assert_eq!(one("k = a\\\n# b\n"), pair("k", "a# b"));
    }

    #[test]
    fn a_blank_continuation_line_ends_the_entry() {
        let text = "k = a\\\n\nnext = 1\n";
        assert_eq!(
            entries(text),
            vec![("k".into(), "a".into(), 1), ("next".into(), "1".into(), 3)]
        );
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        let text = "k = a\\\\\nnext = 1\n";
        assert_eq!(
            entries(text),
            vec![
                ("k".into(), "a\\".into(), 1),
                ("next".into(), "1".into(), 2)
            ]
        );
    }

    #[test]
    fn line_endings_crlf_and_cr_count_lines() {
        let text = "a = 1\r\nb = 2\rc = 3\n";
        assert_eq!(
            entries(text),
            vec![
                ("a".into(), "1".into(), 1),
                ("b".into(), "2".into(), 2),
                ("c".into(), "3".into(), 3),
            ]
        );
    }

    #[test]
    fn continuation_across_crlf() {
        assert_eq!(one("k = a\\\r\n  b\r\n"), pair("k", "ab"));
    }

    #[test]
    fn duplicate_key_last_wins_and_is_reported() {
        let (properties, errors) = parse("a = 1\nb = 2\na = 3\n");
        assert!(errors.is_empty());
        assert_eq!(
            properties.entries,
            vec![
                Property {
                    key: "b".into(),
                    value: "2".into(),
                    line: 2
                },
                Property {
                    key: "a".into(),
                    value: "3".into(),
                    line: 3
                },
            ]
        );
        assert_eq!(
            properties.duplicates,
            vec![DuplicateKey {
                key: "a".into(),
                overridden_line: 1,
                winning_line: 3
            }]
        );
    }

    #[test]
    fn unterminated_continuation_is_an_error() {
        for text in ["a = 1\nk = v \\", "a = 1\nk = v \\\n"] {
            let (properties, errors) = parse(text);
            assert_eq!(
                errors,
                vec![SyntaxError::UnterminatedContinuation { line: 2 }],
                "{text:?}"
            );
            assert_eq!(properties.entries.len(), 2);
        }
    }

    #[test]
    fn malformed_unicode_escapes_are_errors_and_parsing_goes_on() {
        let text = "a = \\u12\nb = \\uzzzz1\nc = ok\nd = \\ud83d alone\n";
        let (properties, errors) = parse(text);
        assert_eq!(
            errors,
            vec![
                SyntaxError::MalformedUnicodeEscape {
                    line: 1,
                    escape: "\\u12".into()
                },
                SyntaxError::MalformedUnicodeEscape {
                    line: 2,
                    escape: "\\uzzzz".into()
                },
                SyntaxError::LoneSurrogate {
                    line: 4,
                    escape: "\\ud83d".into()
                },
            ]
        );
        assert_eq!(properties.entries.len(), 1);
        assert_eq!(properties.entries[0].key, "c");
    }

    #[test]
    fn iso_8859_1_decoding_maps_each_byte_to_one_char() {
        let bytes = "k = é\n".as_bytes();
        assert_eq!(decode_iso_8859_1(bytes), "k = Ã©\n");
        assert_eq!(lines_with_non_ascii(b"a\nk = \xc3\xa9\nb\n"), vec![2]);
    }
}
