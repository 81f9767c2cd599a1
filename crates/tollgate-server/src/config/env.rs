//! The environment overlay: `TOLLGATE_A__B=value` replaces setting `a.b`.

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{ConfigErrors, Errors, parse_yaml};

use super::document::SERVER_SECTIONS;

/// `true` all work) replaces setting `a.b`.
pub fn apply_env(
    doc: &mut Value,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigErrors> {
    let mut errs = Errors::default();
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
                errs.push(&path[..i].join("."), format!("{name}: not a mapping"));
                break;
            };
            if i + 1 == path.len() {
                map.insert(part.clone(), value.clone());
                break;
            }
            node = map
                .entry(part.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    errs.finish(())
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
        apply_env(
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
    }
}
