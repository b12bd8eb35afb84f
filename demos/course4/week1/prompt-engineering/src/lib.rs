//! Prompt templates: text with `{name}` placeholders, rendered from named values.
//!
//! A prompt is code, so a template fails loudly: a placeholder with no value, a value no
//! placeholder uses, or an unclosed brace is an error, never a prompt silently sent with
//! `{text}` in it. `{{` and `}}` write literal braces (a JSON example inside a prompt).

use std::collections::BTreeMap;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    Missing(String),
    Unused(String),
    Unclosed(usize),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Missing(n) => write!(f, "no value for placeholder {{{n}}}"),
            TemplateError::Unused(n) => write!(f, "value {n:?} is used by no placeholder"),
            TemplateError::Unclosed(at) => write!(f, "unclosed '{{' at byte {at}"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Render `template` with `values`; every placeholder must have a value and every value a
/// placeholder.
pub fn render(template: &str, values: &BTreeMap<&str, &str>) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut used = std::collections::BTreeSet::new();
    let mut rest = template;
    let mut offset = 0;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            offset += i + 2;
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            offset += i + 2;
            rest = after;
        } else if let Some(after) = tail.strip_prefix('}') {
            // A lone '}' is text: only '{' opens a placeholder.
            out.push('}');
            offset += i + 1;
            rest = after;
        } else {
            let end = tail.find('}').ok_or(TemplateError::Unclosed(offset + i))?;
            let name = &tail[1..end];
            let value = values
                .get(name)
                .ok_or_else(|| TemplateError::Missing(name.to_owned()))?;
            out.push_str(value);
            used.insert(name);
            offset += i + end + 1;
            rest = &tail[end + 1..];
        }
    }
    out.push_str(rest);
    if let Some(unused) = values.keys().find(|k| !used.contains(*k)) {
        return Err(TemplateError::Unused((*unused).to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{TemplateError, render};
    use std::collections::BTreeMap;

    fn vals<'a>(pairs: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn renders_placeholders_and_escaped_braces() {
        let got = render("Q: {text} as {{\"a\": 1}}", &vals(&[("text", "ünï ✓")]));
        assert_eq!(got.unwrap(), "Q: ünï ✓ as {\"a\": 1}");
        assert_eq!(render("", &vals(&[])).unwrap(), "");
        assert_eq!(render("a } b", &vals(&[])).unwrap(), "a } b");
    }

    #[test]
    fn refuses_missing_unused_and_unclosed() {
        assert_eq!(
            render("{x}", &vals(&[])),
            Err(TemplateError::Missing("x".into()))
        );
        assert_eq!(
            render("hi", &vals(&[("x", "1")])),
            Err(TemplateError::Unused("x".into()))
        );
        assert_eq!(
            render("ab {x", &vals(&[("x", "1")])),
            Err(TemplateError::Unclosed(3))
        );
    }
}
