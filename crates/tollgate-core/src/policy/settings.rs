//! Descriptions of configuration settings. Every parser names the fields it accepts with a
//! table of [`Setting`]s, and [`check_fields`](super::parse::check_fields) takes that table:
//! the same table prints the configuration reference, so a field cannot be accepted without
//! being described, nor described without being accepted.

/// One setting of a configuration section: its name, the kind of value it takes, its
/// default, the values allowed, and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The field's name in the YAML mapping.
    pub name: &'static str,
    /// The kind of value, as a reader writes it: `duration`, `string`, `integer`, …
    pub ty: &'static str,
    /// The value taken when the field is absent; empty when there is none to show (a
    /// required field, or one whose absence means "off").
    pub default: &'static str,
    /// The values accepted, when narrower than the type; empty otherwise.
    pub range: &'static str,
    /// What the setting does, in one or two sentences of Markdown.
    pub doc: &'static str,
}

impl Setting {
    /// A setting with no default and no range beyond its type.
    pub const fn new(name: &'static str, ty: &'static str, doc: &'static str) -> Setting {
        Setting {
            name,
            ty,
            default: "",
            range: "",
            doc,
        }
    }

    /// The same setting, with the value taken when it is absent.
    pub const fn default(self, default: &'static str) -> Setting {
        Setting { default, ..self }
    }

    /// The same setting, with the values it accepts.
    pub const fn range(self, range: &'static str) -> Setting {
        Setting { range, ..self }
    }
}

/// A mapping of the configuration and the settings it takes, for the reference.
#[derive(Debug, Clone)]
pub struct Section {
    /// Where it sits: `server`, `store.breaker`, `rules[]` (each item of a list),
    /// `tiers.<name>` (each value of a mapping).
    pub path: &'static str,
    /// What it is for, in Markdown.
    pub doc: &'static str,
    /// Its settings, in the order the parser lists them.
    pub settings: Vec<Setting>,
}

impl Section {
    /// A section at `path` holding `settings`.
    pub fn new(path: &'static str, doc: &'static str, settings: &[Setting]) -> Section {
        Section {
            path,
            doc,
            settings: settings.to_vec(),
        }
    }
}

/// The names of `settings`, in order.
pub fn names(settings: &[Setting]) -> Vec<&'static str> {
    settings.iter().map(|s| s.name).collect()
}
