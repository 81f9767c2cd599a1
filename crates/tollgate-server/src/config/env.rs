//! The environment overlay: `TOLLGATE_A__B=value` replaces setting `a.b`.

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{ConfigErrors, Errors, parse_yaml};

use super::document::SERVER_SECTIONS;

/// Applies `TOLLGATE_A__B=value` variables: the value (read as YAML, so `5s`, `[a, b]` and
/// `true` all work) replaces setting `a.b`. Returns each setting replaced with the
/// variable that replaced it, so an error in one can name the variable.
pub fn apply_env(
    doc: &mut Value,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigErrors> {
    let mut errs = Errors::default();
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("TOLLGATE_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some(section) = path.first() else {
            continue;
        };
        if !SERVER_SECTIONS.contains(&section.as_str()) {
            errs.push(
                &path.join("."),
                format!(
                    "{name} does not name a setting (sections: {})",
                    SERVER_SECTIONS.join(", ")
                ),
            );
            continue;
        }
        let value = parse_yaml(&raw).unwrap_or(Value::String(raw));
        if !doc.is_object() {
            *doc = Value::Object(Map::new());
        }
        let mut node = &mut *doc;
        for (i, part) in path.iter().enumerate() {
            let Value::Object(map) = node else {
                let above: Vec<&str> = path.iter().take(i).map(String::as_str).collect();
                errs.push(&above.join("."), format!("{name}: not a mapping"));
                break;
            };
            if i == path.len().saturating_sub(1) {
                map.insert(part.clone(), value.clone());
                applied.push((path.join("."), name.clone()));
                break;
            }
            node = map
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    errs.finish(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_sections_are_overlaid() {
        let mut doc = Value::Null;
        let err = apply_env(
            &mut doc,
            [("TOLLGATE_RULES__X".to_string(), "1".to_string())].into_iter(),
        )
        .unwrap_err();
        assert_eq!(err.0[0].path, "rules.x");
        let _ = apply_env(
            &mut doc,
            [
                ("TOLLGATE_SERVER__MAX_BODY".to_string(), "1MB".to_string()),
                ("TOLLGATE_ADMIN_TOKEN".to_string(), "not a path".to_string()),
                ("OTHER__X".to_string(), "1".to_string()),
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(doc, serde_json::json!({"server": {"max_body": "1MB"}}));
        let applied = apply_env(
            &mut doc,
            [("TOLLGATE_SERVER__LISTN".to_string(), "x".to_string())].into_iter(),
        )
        .unwrap();
        assert_eq!(
            applied,
            [(
                "server.listn".to_string(),
                "TOLLGATE_SERVER__LISTN".to_string()
            )]
        );
    }
}
