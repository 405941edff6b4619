//! The layer order stated in `src/lib.rs`'s doc is the order the code keeps: every `crate::…`
//! path in a module names a module of a lower layer (or its own), so no import points up the
//! data flow and no two modules import each other. Reads the source, not the compiled crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::root;

/// Modules every layer may use: test-only helpers.
const ANYWHERE: &[&str] = &["test_support"];

/// `N. a, b, c` lines under the "Layers" heading of lib.rs's doc → module → layer number.
fn declared_layers(lib: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    let mut inside = false;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            if inside {
                break;
            }
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with("Layers") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let Some((num, names)) = doc.split_once(". ") else {
            if doc.is_empty() {
                break;
            }
            continue;
        };
        let Ok(n) = num.parse::<u32>() else { continue };
        for name in names.split(',') {
            let name = name.trim().trim_matches('`');
            let name = name.split_whitespace().next().unwrap_or_default();
            if !name.is_empty() {
                layers.insert(name.to_string(), n);
            }
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to (`src/http/h1.rs` → `http`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// The first path segment after every `crate::` in code (comments skipped), including each
/// item of a `crate::{a, b::c}` group.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // Skip `$crate::` and identifiers ending in "crate" (e.g. `my_crate::`).
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let seg: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !seg.is_empty() {
                        refs.insert(seg);
                    }
                }
            } else {
                let seg: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !seg.is_empty() {
                    refs.insert(seg);
                }
            }
        }
    }
    refs
}

#[test]
fn imports_only_point_down_the_layers_stated_in_lib_rs() {
    let src = root().join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let layers = declared_layers(&lib);
    assert!(
        layers.len() >= 5,
        "src/lib.rs must state the layers as `N. module, module` lines under a `Layers` heading; found {layers:?}"
    );
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for f in &files {
        let Some(module) = module_of(&src, f) else {
            continue;
        };
        modules.insert(module.clone());
        let Some(&own) = layers.get(&module) else {
            if !ANYWHERE.contains(&module.as_str()) {
                problems.push(format!(
                    "{}: module `{module}` is not in the layer list of src/lib.rs",
                    f.display()
                ));
            }
            continue;
        };
        let text = std::fs::read_to_string(f).expect("read source file");
        for r in crate_refs(&text) {
            if r == module || ANYWHERE.contains(&r.as_str()) {
                continue;
            }
            match layers.get(&r) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => problems.push(format!(
                    "{}: `{module}` (layer {own}) uses `crate::{r}` (layer {theirs}): imports must point to lower layers",
                    f.display()
                )),
                // Items re-exported at the crate root (e.g. `crate::EXIT_OK`) belong to lib.rs,
                // the top: only modules of the top layer may use them.
                None if r.chars().next().is_some_and(|c| c.is_uppercase())
                    || lib.contains(&format!("pub fn {r}"))
                    || lib.contains(&format!("fn {r}")) =>
                {
                    let top = layers.values().max().copied().unwrap_or(0);
                    if own < top {
                        problems.push(format!(
                            "{}: `{module}` (layer {own}) uses `crate::{r}` from lib.rs, the top",
                            f.display()
                        ));
                    }
                }
                None => problems.push(format!(
                    "{}: `{module}` uses `crate::{r}`, which is not in the layer list of src/lib.rs",
                    f.display()
                )),
            }
        }
    }
    for m in layers.keys() {
        if !modules.contains(m) {
            problems.push(format!(
                "src/lib.rs lists `{m}` as a layer but src/ has no such module"
            ));
        }
    }
    assert!(problems.is_empty(), "layering:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_plain_paths_and_skips_comments() {
    let refs = crate_refs(
        "use crate::{http::client, outcome::ErrorKind};\nlet x = crate::plan::build();\n// crate::report\nmacro $crate::foo",
    );
    assert_eq!(
        refs,
        ["http", "outcome", "plan"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let layers = declared_layers(
        "//! Layers, bottom to top:\n//! 1. outcome, `template`\n//! 2. http\n//!\n//! more\n",
    );
    assert_eq!(layers.get("template"), Some(&1));
    assert_eq!(layers.get("http"), Some(&2));
    assert_eq!(layers.len(), 3);
}
