//! Counter key templates: `"user:{user}"`, `"{tenant}/{ip}"`.

use thiserror::Error;

use crate::subject::{Attr, Subject};

/// A parsed key template: literal text and attribute references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Attr(Attr),
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error("unbalanced braces in key template")]
    Unbalanced,
    /// `{name}` names no attribute.
    #[error(
        "key template names unknown attribute `{0}` (expected user, ip, method, path, tenant, key or attr.NAME)"
    )]
    UnknownAttribute(String),
}

impl KeyTemplate {
    /// Parses a template. `{{` and `}}` stand for literal braces.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some('{') | None => return Err(TemplateError::Unbalanced),
                            Some(c) => name.push(c),
                        }
                    }
                    let name = name.trim();
                    let attr = Attr::parse(name)
                        .ok_or_else(|| TemplateError::UnknownAttribute(name.into()))?;
                    if !lit.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Attr(attr));
                }
                '}' => return Err(TemplateError::Unbalanced),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Literal(lit));
        }
        Ok(KeyTemplate {
            source: source.into(),
            parts,
        })
    }

    /// A template of fixed text only, for counters whose keys the caller renders (Envoy
    /// descriptors).
    pub fn literal(text: &str) -> Self {
        KeyTemplate {
            source: text.replace('{', "{{").replace('}', "}}"),
            parts: vec![Part::Literal(text.into())],
        }
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The attributes the template names; a rule only applies when all are present.
    pub fn attrs(&self) -> impl Iterator<Item = &Attr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Attr(a) => Some(a),
            Part::Literal(_) => None,
        })
    }

    /// Renders the counter key for `subject`; `None` when an attribute is missing.
    pub fn render(&self, subject: &Subject, ipv6_prefix: u8) -> Option<String> {
        let mut out = String::with_capacity(self.source.len().saturating_add(24));
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Attr(a) => {
                    if !subject.write_key_part(a, ipv6_prefix, &mut out) {
                        return None;
                    }
                }
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_refuses() {
        let t = KeyTemplate::parse("user:{user}/{attr.plan}{{x}}").unwrap();
        let s = Subject::new().with("user", "42").unwrap();
        assert_eq!(t.render(&s, 64), None);
        let s = s.with("attr.plan", "pro").unwrap();
        assert_eq!(t.render(&s, 64).as_deref(), Some("user:42/pro{x}"));
        assert_eq!(
            KeyTemplate::parse("{nope}"),
            Err(TemplateError::UnknownAttribute("nope".into()))
        );
        assert_eq!(KeyTemplate::parse("{user"), Err(TemplateError::Unbalanced));
        assert_eq!(KeyTemplate::parse("a}"), Err(TemplateError::Unbalanced));
    }
}
