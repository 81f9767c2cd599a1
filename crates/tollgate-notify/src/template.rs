//! Rendering notice text from templates (minijinja), strict about undefined variables.

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use thiserror::Error;

/// Why a template did not render.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The template uses a variable that was not given.
    #[error("undefined variable {name:?}")]
    Undefined {
        /// The variable (dotted for nested ones, e.g. `key.owner`).
        name: String,
    },
    /// The template does not parse or failed otherwise.
    #[error("template: {0}")]
    Invalid(String),
}

/// Renders `template` with `vars`; any undefined variable is an error naming it.
pub fn render(template: &str, vars: &serde_json::Value) -> Result<String, TemplateError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    let compiled = env
        .template_from_str(template)
        .map_err(|e| TemplateError::Invalid(e.to_string()))?;
    match compiled.render(Value::from(Serde(vars))) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == ErrorKind::UndefinedError => {
            let mut names: Vec<String> = compiled.undeclared_variables(true).into_iter().collect();
            names.sort();
            let missing = names.iter().find_map(|name| missing_prefix(vars, name));
            match missing {
                Some(name) => Err(TemplateError::Undefined { name }),
                None => Err(TemplateError::Invalid(e.to_string())),
            }
        }
        Err(e) => Err(TemplateError::Invalid(e.to_string())),
    }
}

/// The shortest prefix of the dotted `path` absent from `vars`, if any.
fn missing_prefix(vars: &serde_json::Value, path: &str) -> Option<String> {
    let mut at = vars;
    let mut seen: Vec<&str> = Vec::new();
    for part in path.split('.') {
        seen.push(part);
        match at.get(part) {
            Some(next) => at = next,
            None => return Some(seen.join(".")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables() {
        let vars = serde_json::json!({"key": {"owner": "acme"}, "used": 80, "limit": 100});
        let out = render("{{ key.owner }} used {{ used }}/{{ limit }}", &vars).unwrap();
        assert_eq!(out, "acme used 80/100");
    }

    #[test]
    fn missing_variable_is_named() {
        let vars = serde_json::json!({"key": {"owner": "acme"}});
        let err = render("{{ key.owner }} {{ period }}", &vars).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Undefined { name } if name == "period"),
            "{err}"
        );
        let err = render("{{ key.tier }}", &vars).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Undefined { name } if name == "key.tier"),
            "{err}"
        );
    }

    #[test]
    fn syntax_error() {
        assert!(matches!(
            render("{{ oops", &serde_json::json!({})),
            Err(TemplateError::Invalid(_))
        ));
    }
}
