//! The layer order stated in `src/lib.rs`'s doc is the order the code keeps: every `crate::…`
//! path in a module names a module of a lower layer (or its own), so no import points up the
//! data flow and no two modules import each other. A layer entry is a module path: a top-level
//! module (`http`, the whole of `src/http/`) or a module in a folder (`engine::executor`). A
//! folder whose modules are listed one by one is a band of layers of its own: no module outside
//! it sits in a layer between its lowest and its highest, so folders, too, only import
//! downwards. Every file in src/ must belong to a listed entry. Reads the source, not the
//! compiled crate.

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

/// The module path a source file defines (`src/http/h1.rs` → `http::h1`, `src/stats/mod.rs` →
/// `stats`); `None` for lib.rs and main.rs, the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = segs.pop()?;
    let stem = last.strip_suffix(".rs").unwrap_or(&last);
    if segs.is_empty() && (stem == "lib" || stem == "main") {
        return None;
    }
    if stem != "mod" {
        segs.push(stem.to_string());
    }
    Some(segs.join("::"))
}

/// The listed entry a module path belongs to: the longest entry that is the path or a prefix of
/// it (`http::h2::Conn` → `http`, `engine::executor::run` → `engine::executor`).
fn entry_of<'a>(layers: &'a BTreeMap<String, u32>, path: &str) -> Option<&'a str> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .map(|n| segs[..n].join("::"))
        .find_map(|p| layers.get_key_value(&p).map(|(k, _)| k.as_str()))
}

/// Folders whose modules are listed one by one (`engine::executor`), each with the entries in it.
fn folders(layers: &BTreeMap<String, u32>) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for name in layers.keys() {
        if let Some((folder, _)) = name.split_once("::") {
            out.entry(folder).or_default().push(name.as_str());
        }
    }
    out
}

/// A folder's modules sit in one band of layers that no module outside the folder shares.
fn check_bands(layers: &BTreeMap<String, u32>, problems: &mut Vec<String>) {
    for (folder, inside) in folders(layers) {
        let lo = inside.iter().map(|m| layers[*m]).min().unwrap_or(0);
        let hi = inside.iter().map(|m| layers[*m]).max().unwrap_or(0);
        for (m, &n) in layers {
            let outside = m.split("::").next() != Some(folder);
            if outside && (lo..=hi).contains(&n) {
                problems.push(format!(
                    "src/lib.rs puts `{m}` in layer {n}, inside the band of folder `{folder}/` \
                     (layers {lo}..={hi}): a folder's modules must be neighbours in the layer list"
                ));
            }
        }
    }
}

/// The full path after every `crate::` in code (comments skipped), one per item of a
/// `crate::{a, b::{c, d}}` group: `a`, `b::c`, `b::d`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: Vec<&str> = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect();
    // Whole text, not line by line: rustfmt spreads long groups over lines.
    let code = code.join("\n");
    let mut paths = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        // Skip `$crate::` and identifiers ending in "crate" (e.g. `my_crate::`).
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        path_items("", rest, &mut paths);
    }
    paths
}

/// Reads one path (`a::b`, `a::{b, c::d}`) from the start of `text`, prefixed by `prefix`.
fn path_items(prefix: &str, text: &str, out: &mut BTreeSet<String>) {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut path = prefix.to_string();
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            for item in top_level_items(group) {
                path_items(&path, item, out);
            }
            return;
        }
        let seg: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        if seg.is_empty() {
            break;
        }
        if !path.is_empty() {
            path.push_str("::");
        }
        path.push_str(&seg);
        rest = &rest[seg.len()..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    if !path.is_empty() && path != prefix {
        out.insert(path);
    }
}

/// The comma-separated items of a `{…}` group (the text after its `{`), nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

/// The first segment of every `crate::` path (`crate::{http::client, plan}` → `http`, `plan`).
fn crate_refs(text: &str) -> BTreeSet<String> {
    crate_paths(text)
        .into_iter()
        .filter_map(|p| p.split("::").next().map(String::from))
        .collect()
}

/// What is wrong with one `crate::` path `r` used by entry `own` (in layer `layer`), if anything.
fn check_ref(
    layers: &BTreeMap<String, u32>,
    lib: &str,
    (own, layer): (&str, u32),
    r: &str,
) -> Option<String> {
    let first = r.split("::").next().unwrap_or_default();
    if ANYWHERE.contains(&first) {
        return None;
    }
    if let Some(theirs) = entry_of(layers, r) {
        let n = layers[theirs];
        return (theirs != own && n >= layer).then(|| {
            format!(
                "`{own}` (layer {layer}) uses `crate::{r}` (`{theirs}`, layer {n}): imports must point to lower layers"
            )
        });
    }
    // Items re-exported at the crate root (e.g. `crate::EXIT_OK`) belong to lib.rs, the top:
    // only modules of the top layer may use them.
    let top = layers.values().max().copied().unwrap_or(0);
    if !r.contains("::")
        && (first.chars().next().is_some_and(|c| c.is_uppercase())
            || lib.contains(&format!("fn {first}")))
    {
        return (layer < top)
            .then(|| format!("`{own}` (layer {layer}) uses `crate::{r}` from lib.rs, the top"));
    }
    Some(format!(
        "`{own}` uses `crate::{r}`, which names no module of the layer list of src/lib.rs \
         (name the module itself, e.g. `crate::engine::executor::…`)"
    ))
}

/// The problems of one source file: not in the list, or a `crate::` path that points up.
fn check_file(
    src: &Path,
    f: &Path,
    (layers, lib): (&BTreeMap<String, u32>, &str),
    seen: &mut BTreeSet<String>,
) -> Vec<String> {
    let Some(module) = module_of(src, f) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(f).expect("read source file");
    let first = module.split("::").next().unwrap_or_default();
    if ANYWHERE.contains(&first) {
        return Vec::new();
    }
    let Some(own) = entry_of(layers, &module) else {
        // A listed folder's mod.rs only declares (and re-exports) the modules in it.
        if folders(layers).contains_key(module.as_str()) {
            return crate_refs(&text)
                .into_iter()
                .map(|r| {
                    format!(
                        "{}: folder `{module}/`'s mod.rs uses `crate::{r}`: it may only declare and re-export its modules",
                        f.display()
                    )
                })
                .collect();
        }
        return vec![format!(
            "{}: module `{module}` is not in the layer list of src/lib.rs",
            f.display()
        )];
    };
    seen.insert(own.to_string());
    let layer = layers[own];
    crate_paths(&text)
        .iter()
        .filter_map(|r| check_ref(layers, lib, (own, layer), r))
        .map(|p| format!("{}: {p}", f.display()))
        .collect()
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
    check_bands(&layers, &mut problems);
    let mut seen = BTreeSet::new();
    for f in &files {
        problems.extend(check_file(&src, f, (&layers, &lib), &mut seen));
    }
    for m in layers.keys() {
        if !seen.contains(m) {
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
