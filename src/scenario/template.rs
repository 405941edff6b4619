//! `${...}` templates in URLs, headers and bodies.
//!
//! `${env.NAME}` is read from the environment once, when the plan is built. `${name}` is a VU
//! variable (set by `variables` or `extract`), `${vu}` the VU number and `${iteration}` the VU's
//! iteration number; these are filled in per request. A template without per-request parts is
//! rendered once, at plan time, so the hot path never formats it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(usize),
    Vu,
    Iteration,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Per-VU values a template can refer to.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    /// Values by variable index (see [`VarTable`]).
    pub values: Vec<String>,
    /// The VU number.
    pub vu: u64,
    /// The VU's iteration count.
    pub iteration: u64,
}

/// Names of a scenario's VU variables, in index order.
#[derive(Clone, Debug, Default)]
pub struct VarTable {
    names: Vec<String>,
}

impl VarTable {
    /// The index of `name`, adding it if new.
    pub fn index(&mut self, name: &str) -> usize {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i;
        }
        self.names.push(name.to_string());
        self.names.len() - 1
    }
    /// The index of `name` if known.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
    /// How many variables there are.
    pub fn len(&self) -> usize {
        self.names.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// A template problem, with the offending text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `${` without `}`.
    #[error("unclosed `${{` in `{0}`")]
    Unclosed(String),
    /// `${env.X}` where X is not set.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    /// `${x}` where x is never defined.
    #[error("variable `{0}` is not defined by `variables` or by an `extract` of this scenario")]
    Undefined(String),
}

impl Template {
    /// Parses `text`, resolving `${env.*}` through `env` and variables through `vars` (names
    /// must already be known there).
    pub fn parse(
        text: &str,
        vars: &VarTable,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            lit.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(text.to_string()))?;
            let name = after[..end].trim();
            if let Some(var) = name.strip_prefix("env.") {
                let v = env(var).ok_or_else(|| TemplateError::MissingEnv(var.to_string()))?;
                lit.push_str(&v);
            } else {
                let part = match name {
                    "vu" => Part::Vu,
                    "iteration" => Part::Iteration,
                    _ => Part::Var(
                        vars.get(name)
                            .ok_or_else(|| TemplateError::Undefined(name.to_string()))?,
                    ),
                };
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(part);
            }
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// The text, if the template has no per-request parts.
    pub fn as_static(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Renders with a VU's values.
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(i) => out.push_str(vars.values.get(*i).map_or("", String::as_str)),
                Part::Vu => {
                    let _ = write!(out, "{}", vars.vu);
                }
                Part::Iteration => {
                    let _ = write!(out, "{}", vars.iteration);
                }
            }
        }
        out
    }
}

/// The process environment as a lookup function.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Collects the variable names a scenario defines.
pub(crate) fn table_from<'a>(
    initial: impl IntoIterator<Item = &'a String>,
    extracted: impl IntoIterator<Item = &'a String>,
) -> VarTable {
    let mut t = VarTable::default();
    for n in initial.into_iter().chain(extracted) {
        t.index(n);
    }
    t
}

/// Initial values for a VU.
pub(crate) fn initial_values(table: &VarTable, init: &BTreeMap<String, String>) -> Vec<String> {
    let mut v = vec![String::new(); table.len()];
    for (k, val) in init {
        if let Some(i) = table.get(k) {
            v[i] = val.clone();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: &str) -> Option<String> {
        (n == "HOST").then(|| "example.test".to_string())
    }

    #[test]
    fn static_templates_render_once() {
        let t = Template::parse("http://${env.HOST}/x", &VarTable::default(), &env).unwrap();
        assert_eq!(t.as_static(), Some("http://example.test/x"));
    }

    #[test]
    fn variables_render_per_vu() {
        let mut vt = VarTable::default();
        vt.index("token");
        let t = Template::parse("Bearer ${token} vu=${vu} it=${iteration}", &vt, &env).unwrap();
        assert_eq!(t.as_static(), None);
        let vars = Vars {
            values: vec!["abc".into()],
            vu: 3,
            iteration: 7,
        };
        assert_eq!(t.render(&vars), "Bearer abc vu=3 it=7");
    }

    #[test]
    fn errors_name_the_problem() {
        let vt = VarTable::default();
        assert_eq!(
            Template::parse("${nope}", &vt, &env),
            Err(TemplateError::Undefined("nope".into()))
        );
        assert_eq!(
            Template::parse("${env.NOPE}", &vt, &env),
            Err(TemplateError::MissingEnv("NOPE".into()))
        );
        assert!(matches!(
            Template::parse("a ${b", &vt, &env),
            Err(TemplateError::Unclosed(_))
        ));
    }
}
