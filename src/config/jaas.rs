//! The one login module of a client's `sasl.jaas.config`, tokenised the way
//! Kafka's `JaasConfig` tokenises it (`java.io.StreamTokenizer`): words,
//! quoted strings with backslash escapes, `//` and `/* */` comments, and
//! `key=value` options up to a `;`. Errors never quote option values: they
//! hold passwords.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginModule {
    pub class: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Number,
    Symbol(char),
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || ('\u{a0}'..='\u{ff}').contains(&c) || c == '_' || c == '$'
}

fn is_word_part(c: char) -> bool {
    is_word_start(c) || c.is_ascii_digit() || c == '.' || c == '-'
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c <= ' ' {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            loop {
                if i + 1 >= chars.len() {
                    return Err("has a /* comment that is never closed — close it with */".into());
                }
                if chars[i] == '*' && chars[i + 1] == '/' {
                    i += 2;
                    break;
                }
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let (quoted, next) = read_quoted(&chars, i + 1, c);
            tokens.push(Token::Quoted(quoted));
            i = next;
        } else if c.is_ascii_digit()
            || c == '.'
            || (c == '-'
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_digit() || *n == '.'))
        {
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Number);
        } else if is_word_start(c) {
            let start = i;
            while i < chars.len() && is_word_part(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Symbol(c));
            i += 1;
        }
    }
    Ok(tokens)
}

/// A quoted string ends at its closing quote, or (as in StreamTokenizer)
/// at the end of the line.
fn read_quoted(chars: &[char], mut i: usize, quote: char) -> (String, usize) {
    let mut out = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return (out, i + 1);
        }
        if c == '\n' || c == '\r' {
            return (out, i);
        }
        if c == '\\' && i + 1 < chars.len() {
            i += 1;
            let escaped = chars[i];
            match escaped {
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\u{b}'),
                '0'..='7' => {
                    let mut value = escaped.to_digit(8).unwrap_or(0);
                    let max_digits = if escaped <= '3' { 3 } else { 2 };
                    let mut digits = 1;
                    while digits < max_digits {
                        match chars.get(i + 1).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                i += 1;
                                digits += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            }
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    (out, i)
}

const NO_MODULE: &str = "names no login module — write e.g. \
    org.apache.kafka.common.security.plain.PlainLoginModule required username=\"...\" password=\"...\";";
const NO_CLASS: &str = "does not start with a login module class name — write e.g. \
    org.apache.kafka.common.security.scram.ScramLoginModule required ...;";
const DIGIT: &str = "starts with a digit, which Kafka's JAAS parser does not read as text \
    — put it in double quotes";
const NOT_AN_OPTION: &str =
    "has something other than key=value options before its ; — quote values with double quotes";

/// Parses a client JAAS configuration, which Kafka requires to hold exactly
/// one login module.
pub(crate) fn parse_login_module(text: &str) -> Result<LoginModule, String> {
    let tokens = tokenize(text)?;
    let mut modules = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        let (module, remaining) = parse_entry(rest)?;
        modules.push(module);
        rest = remaining;
    }
    match modules.len() {
        0 => Err(NO_MODULE.into()),
        1 => Ok(modules.remove(0)),
        n => Err(format!(
            "holds {n} login modules; a Kafka client takes exactly one — keep one entry"
        )),
    }
}

fn parse_entry(tokens: &[Token]) -> Result<(LoginModule, &[Token]), String> {
    let class = match tokens.first() {
        Some(Token::Word(word)) => word.clone(),
        _ => return Err(NO_CLASS.into()),
    };
    match tokens.get(1) {
        Some(Token::Word(flag))
            if ["required", "requisite", "sufficient", "optional"]
                .iter()
                .any(|known| flag.eq_ignore_ascii_case(known)) => {}
        Some(_) => {
            return Err(format!(
            "{class} is followed by an unknown control flag — write required after the class name"
        ))
        }
        None => {
            return Err(format!(
                "{class} has no control flag — write required after the class name"
            ))
        }
    }
    let mut options = BTreeMap::new();
    let mut i = 2;
    loop {
        match tokens.get(i) {
            Some(Token::Symbol(';')) => {
                return Ok((LoginModule { class, options }, &tokens[i + 1..]))
            }
            None => return Err("is not terminated by a semicolon — end the entry with ;".into()),
            Some(Token::Word(key)) => {
                if tokens.get(i + 1) != Some(&Token::Symbol('=')) {
                    return Err(format!("option {key} has no value — write {key}=\"...\""));
                }
                match tokens.get(i + 2) {
                    Some(Token::Word(value)) | Some(Token::Quoted(value)) => {
                        options.insert(key.clone(), value.clone());
                    }
                    Some(Token::Number) => {
                        return Err(format!("the value of option {key} {DIGIT}"))
                    }
                    _ => return Err(format!("option {key} has no value — write {key}=\"...\"")),
                }
                i += 3;
            }
            Some(_) => return Err(NOT_AN_OPTION.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_login_module() {
        let module = parse_login_module(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="al1ce-secret";"#,
        )
        .unwrap();
        assert_eq!(
            module.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(module.options["username"], "alice");
        assert_eq!(module.options["password"], "al1ce-secret");
    }

    #[test]
    fn quotes_escapes_comments_and_bare_words() {
        let module = parse_login_module(
            "/* c */ org.x.ScramLoginModule REQUIRED // note\n username=bob password='p\\\"w\\\\d\\n' ;",
        )
        .unwrap();
        assert_eq!(module.options["username"], "bob");
        assert_eq!(module.options["password"], "p\"w\\d\n");
    }

    #[test]
    fn errors_say_what_to_write() {
        let cases = [
            ("", "names no login module"),
            (
                "org.x.Plain required username=\"a\"",
                "not terminated by a semicolon",
            ),
            ("org.x.Plain username=\"a\";", "unknown control flag"),
            (
                "org.x.Plain required username;",
                "option username has no value",
            ),
            (
                "org.x.Plain required password=123;",
                "put it in double quotes",
            ),
            ("a.A required; b.B required;", "holds 2 login modules"),
            ("org.x.Plain required /* open", "never closed"),
        ];
        for (text, expected) in cases {
            let error = parse_login_module(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn errors_never_contain_option_values() {
        let error =
            parse_login_module("org.x.Plain required password=\"s3cr3t\" user").unwrap_err();
        assert!(!error.contains("s3cr3t"), "{error}");
    }
}
