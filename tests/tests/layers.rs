//! The layers of `common` as ARCHITECTURE.md's table says: every import points down
//! (or stays in its layer), and every module is in the table.
//!
//! It reads the table from ARCHITECTURE.md (the one source of truth) and, in every
//! source file of `common/src` (its `#[cfg(test)]` module left out), each `use
//! crate::...` (grouped ones expanded), each inline `crate::` path, each `$crate::`
//! of a macro and each `super::` path, resolves it to the module it names, and
//! compares the two modules' layers. An import that points up fails, naming the file,
//! the line and both layers; so do rows of the table whose modules import each other
//! in a circle (within one layer, where pointing down does not forbid it), and
//! modules in no row. There are no exceptions.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `| 3 | data and identity | model, schema, auth |` rows of the table under the
/// heading "## Layers": module path -> (layer number, layer name).
fn layer_table(text: &str) -> BTreeMap<String, (u32, String)> {
    let mut table = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("## ") {
            inside = line.trim() == "## Layers";
            continue;
        }
        if !inside || !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(Ok(n)) = cells.first().map(|c| c.parse::<u32>()) else {
            continue;
        };
        assert!(cells.len() >= 3, "a layer row has a number, a name and modules: {line}");
        for module in cells[2].split(',') {
            let module = module.trim().trim_matches('`');
            if module.is_empty() {
                continue;
            }
            let previous = table.insert(module.to_string(), (n, cells[1].to_string()));
            assert!(previous.is_none(), "{module} is in the table twice");
        }
    }
    assert!(!table.is_empty(), "ARCHITECTURE.md has no \"## Layers\" table");
    table
}

/// Every source file of `common/src` and its module path (`jobs::api`); `lib.rs` is
/// the crate root, "".
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    integration_tests::rust_files(src)
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                parts.pop();
            }
            (parts.join("::"), file)
        })
        .collect()
}

/// The layer of a module: its own row, or its closest parent's.
fn layer_of<'a>(table: &'a BTreeMap<String, (u32, String)>, module: &str) -> Option<&'a (u32, String)> {
    let mut m = module;
    loop {
        if let Some(layer) = table.get(m) {
            return Some(layer);
        }
        m = m.rsplit_once("::")?.0;
    }
}

/// The paths a `use` tree names: `crate::{a::{b, c}, d}` -> `a::b`, `a::c`, `d`.
fn expand(tree: &str) -> Vec<String> {
    fn split_top(s: &str) -> Vec<&str> {
        let (mut depth, mut start, mut out) = (0, 0, Vec::new());
        for (i, c) in s.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }
    let tree = tree.trim();
    match tree.find('{') {
        None => vec![tree.split(" as ").next().unwrap_or(tree).trim().to_string()],
        Some(open) => {
            let prefix = tree[..open].trim_end_matches("::");
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            split_top(inner)
                .into_iter()
                .filter(|p| !p.trim().is_empty())
                .flat_map(expand)
                .map(|p| {
                    if prefix.is_empty() {
                        p
                    } else if p == "self" {
                        prefix.to_string()
                    } else {
                        format!("{prefix}::{p}")
                    }
                })
                .collect()
        }
    }
}

/// One import: where it is, and the path it names from the crate root.
struct Import {
    line: usize,
    path: String,
}

/// The imports of one file's source (without its tests), `module` being its path.
fn imports(source: &str, module: &str) -> Vec<Import> {
    let code = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    // `super` of `a/b.rs` (module a::b) is `a`; of `a/mod.rs` (module a) it is the root.
    let parent = |levels: usize| {
        let mut parts: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
        for _ in 0..levels {
            parts.pop();
        }
        parts.join("::")
    };
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    // A comment names no import (doc links included).
    let in_comment = |offset: usize| {
        let line_start = code[..offset].rfind('\n').map_or(0, |n| n + 1);
        code[line_start..offset].contains("//")
    };
    let mut out = Vec::new();
    let mut seen_spans: Vec<(usize, usize)> = Vec::new();
    // `use crate::...;` and `use super::...;`, grouped ones expanded.
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let start = from + at;
        from = start + 4;
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') || in_comment(start) {
            continue;
        }
        let rest = &code[start + 4..];
        let Some(end) = rest.find(';') else { break };
        let tree = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let (base, tail) = if let Some(t) = tree.strip_prefix("crate::") {
            (String::new(), t.to_string())
        } else if tree.starts_with("super::") {
            let mut levels = 0;
            let mut t = tree.as_str();
            while let Some(next) = t.strip_prefix("super::") {
                levels += 1;
                t = next;
            }
            (parent(levels), t.to_string())
        } else {
            continue;
        };
        seen_spans.push((start, start + 4 + end));
        for path in expand(&tail) {
            let full = if base.is_empty() {
                path
            } else {
                format!("{base}::{path}")
            };
            out.push(Import {
                line: line_of(start),
                path: full,
            });
        }
    }
    // Inline `crate::a::b` and `$crate::a::b` paths outside the `use` lines.
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + 7;
        if seen_spans.iter().any(|(s, e)| (*s..*e).contains(&start)) {
            continue;
        }
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') || in_comment(start) {
            continue;
        }
        let path: String = code[start + 7..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(Import {
            line: line_of(start),
            path: path.trim_end_matches(':').to_string(),
        });
    }
    out
}

/// The module an import path names: its longest prefix that is a module; a name the
/// crate root re-exports is its module's.
fn target(path: &str, modules: &BTreeMap<String, PathBuf>, reexports: &BTreeMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    for n in (1..=parts.len()).rev() {
        let candidate = parts[..n].join("::");
        if modules.contains_key(&candidate) {
            return Some(candidate);
        }
    }
    parts.first().and_then(|first| reexports.get(*first).cloned())
}

/// `pub use context::AppContext;` of lib.rs: `AppContext` -> `context`.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        for path in expand(rest.trim_end_matches(';')) {
            if let Some((module, name)) = path.rsplit_once("::") {
                out.insert(name.to_string(), module.to_string());
            }
        }
    }
    out
}

/// The row of the table a module falls under (its own, or its closest parent's).
fn entry_of(table: &BTreeMap<String, (u32, String)>, module: &str) -> Option<String> {
    let mut m = module;
    loop {
        if table.contains_key(m) {
            return Some(m.to_string());
        }
        m = m.rsplit_once("::")?.0;
    }
}

/// The groups of table rows whose modules import each other in a circle (the
/// strongly connected components of more than one row), each sorted.
fn circles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    let reaches = |from: &String| {
        let mut seen: BTreeSet<&String> = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for (a, b) in edges {
                if a == n && seen.insert(b) {
                    todo.push(b);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<&String>> = nodes.iter().map(|n| (*n, reaches(n))).collect();
    let mut out: Vec<Vec<String>> = Vec::new();
    for n in &nodes {
        let mut group: Vec<String> = nodes
            .iter()
            .filter(|m| reach[n].contains(*m) && reach[*m].contains(*n))
            .map(|m| m.to_string())
            .collect();
        group.sort();
        if group.len() > 1 && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

/// What the crate's imports are, read against the table.
struct Reading {
    /// Imports that point up: `(from module, to module)` and the message naming it.
    upward: Vec<((String, String), String)>,
    /// Modules in no row.
    missing: Vec<String>,
    /// Rows importing one another in a circle (within a layer, where pointing down
    /// does not forbid it).
    circles: Vec<Vec<String>>,
}

/// Every import of `common/src`, read against ARCHITECTURE.md's table.
fn read_imports() -> Reading {
    let root = root();
    let table = layer_table(&std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md"));
    let src = root.join("common/src");
    let modules = modules(&src);
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut missing = Vec::new();
    let mut upward = Vec::new();
    let mut edges = BTreeSet::new();
    for (module, file) in &modules {
        if module.is_empty() {
            continue;
        }
        let Some((from_layer, from_name)) = layer_of(&table, module) else {
            missing.push(format!(
                "{module} ({}) is in no layer of ARCHITECTURE.md",
                file.display()
            ));
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap();
        for import in imports(&source, module) {
            let Some(to) = target(&import.path, &modules, &reexports) else {
                continue;
            };
            if to.is_empty() || &to == module {
                continue;
            }
            let Some((to_layer, to_name)) = layer_of(&table, &to) else {
                continue;
            };
            // Circles are looked for among the imports within a layer: one through an
            // import that points up is reported as that import.
            if let (Some(a), Some(b)) = (entry_of(&table, module), entry_of(&table, &to))
                && a != b
                && to_layer == from_layer
            {
                edges.insert((a, b));
            }
            if to_layer > from_layer {
                let relative = file.strip_prefix(&root).unwrap_or(file);
                upward.push((
                    (module.clone(), to.clone()),
                    format!(
                        "{}:{}: {module} (layer {from_layer}, {from_name}) imports {to} (layer {to_layer}, {to_name}) via crate::{}",
                        relative.display(),
                        import.line,
                        import.path
                    ),
                ));
            }
        }
    }
    Reading {
        upward,
        missing,
        circles: circles(&edges),
    }
}

#[test]
fn every_import_of_common_points_down_the_layers_of_architecture_md() {
    let Reading {
        upward,
        missing,
        circles,
    } = read_imports();
    assert!(
        missing.is_empty(),
        "modules missing from the table:\n{}",
        missing.join("\n")
    );
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("modules missing from the table:\n{}", missing.join("\n")));
    }
    if !upward.is_empty() {
        problems.push(format!(
            "{} import(s) point up the layers:\n{}",
            upward.len(),
            upward.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n")
        ));
    }
    if !circles.is_empty() {
        problems.push(format!(
            "rows whose modules import each other in a circle:\n{}",
            circles
                .iter()
                .map(|c| format!("circle: {}", c.join(", ")))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn use_trees_expand_to_every_path() {
    assert_eq!(
        expand("{AppContext, jobs::{self, store::{JobStore, Lookup}}, notify as n}"),
        [
            "AppContext",
            "jobs",
            "jobs::store::JobStore",
            "jobs::store::Lookup",
            "notify"
        ]
    );
    let found = imports(
        "use crate::{a::b, c};\nuse super::d;\n/// [`crate::k`]\nfn f() { crate::e::g(); $crate::h::i!() } // crate::l\n#[cfg(test)]\nmod tests { use crate::z; }",
        "x::y",
    );
    let paths: Vec<(usize, &str)> = found.iter().map(|i| (i.line, i.path.as_str())).collect();
    assert_eq!(paths, [(1, "a::b"), (1, "c"), (2, "x::d"), (4, "e::g"), (4, "h::i")]);
}
