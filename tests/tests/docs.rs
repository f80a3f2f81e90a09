//! The documents stay true to the tree: every relative link in README.md,
//! ARCHITECTURE.md and docs/ resolves (the file, and the heading a `#fragment`
//! names), README stays a few screens, and every environment variable the code
//! reads, or local.env sets, is documented in docs/configuration.md. The variables
//! are extracted from the code here; there is no hand-kept list to forget.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// GitHub's anchor of a heading: lowercase, punctuation other than `-` and `_`
/// dropped, spaces to `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks), with GitHub's
/// `-1`, `-2` for repeated ones.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let base = anchor(line.trim_start_matches('#'));
        let mut candidate = base.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        seen.insert(candidate);
    }
    seen
}

/// The relative links of a Markdown file, outside code blocks and inline code:
/// `(target, line number)`.
fn relative_links(markdown: &str) -> Vec<(String, usize)> {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let code = Regex::new(r"`[^`]*`").unwrap();
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let line = code.replace_all(line, "");
        for c in link.captures_iter(&line) {
            let target = c[1].to_string();
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((target, i + 1));
            }
        }
    }
    out
}

/// Every problem with `file`'s relative links.
fn broken_links(file: &Path) -> Vec<String> {
    let dir = file.parent().unwrap();
    let own = read(file);
    let mut broken = Vec::new();
    for (target, line) in relative_links(&own) {
        let (path, fragment) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let at = format!("{}:{line}: {target}", file.display());
        if !resolved.exists() {
            broken.push(format!("{at}: no such file"));
            continue;
        }
        if let Some(fragment) = fragment
            && resolved.extension().is_some_and(|e| e == "md")
            && !anchors(&read(&resolved)).contains(fragment)
        {
            broken.push(format!("{at}: no heading with that anchor"));
        }
    }
    broken
}

#[test]
fn readme_links_into_docs_resolve() {
    let readme = root().join("README.md");
    let links = relative_links(&read(&readme));
    let into_docs = links.iter().filter(|(t, _)| t.starts_with("docs/")).count();
    assert!(into_docs >= 10, "README links to the documents in docs/: {links:?}");
    let broken = broken_links(&readme);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_document_link_resolves() {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn readme_fits_on_a_few_screens() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; the references belong in docs/"
    );
    for doc in [
        "api",
        "configuration",
        "deploy",
        "performance",
        "limits",
        "operations",
        "cli",
    ] {
        assert!(root().join(format!("docs/{doc}.md")).exists(), "docs/{doc}.md");
    }
}

/// The environment variables the project's Rust code reads, by the ways it reads
/// them: `std::env::var("X")`/`var_os`, config.rs's `var`, `required` and `number`,
/// clap's `env = "X"`, and tracing's `EnvFilter::try_from_default_env` (`RUST_LOG`).
fn variables_read_by_the_code() -> BTreeSet<String> {
    let root = root();
    let files = ["common/src", "cli/src", "functions", "tests/src", "tests/tests"]
        .iter()
        .flat_map(|dir| integration_tests::rust_files(&root.join(dir)));
    let read_call = Regex::new(r#"\b(?:var|var_os|required|number)\(\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let clap_env = Regex::new(r#"\benv\s*=\s*"([A-Z][A-Z0-9_]*)""#).unwrap();
    let mut names = BTreeSet::new();
    for file in files {
        if file.ends_with("tests/tests/docs.rs") {
            continue;
        }
        let text = read(&file);
        for c in read_call.captures_iter(&text).chain(clap_env.captures_iter(&text)) {
            names.insert(c[1].to_string());
        }
        if text.contains("try_from_default_env") {
            names.insert("RUST_LOG".into());
        }
    }
    names
}

/// The variables local.env sets.
fn variables_of_local_env() -> BTreeSet<String> {
    let assignment = Regex::new(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)=").unwrap();
    read(&root().join("local.env"))
        .lines()
        .filter_map(|l| assignment.captures(l.trim()).map(|c| c[1].to_string()))
        .collect()
}

#[test]
fn every_variable_the_code_reads_is_documented() {
    let code = variables_read_by_the_code();
    // The extraction finds the kinds of reads there are: config, aws.rs, exportctl.
    for known in [
        "JWT_SECRET",
        "EXPORT_QUEUE_URL",
        "WEBHOOK_MAX_ATTEMPTS",
        "AWS_ENDPOINT_URL_S3",
        "API_PORT",
        "RUST_LOG",
    ] {
        assert!(code.contains(known), "the extraction missed {known}: {code:?}");
    }
    assert!(code.len() >= 45, "{} variables found: {code:?}", code.len());
    let local = variables_of_local_env();
    assert!(local.len() >= 30, "{local:?}");
    let documented = read(&root().join("docs/configuration.md"));
    let missing: Vec<&String> = code
        .iter()
        .chain(&local)
        .filter(|name| !documented.contains(&format!("`{name}`")))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        missing.is_empty(),
        "read by the code or set in local.env, but not in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(anchor(" Export jobs: `/api/exports`"), "export-jobs-apiexports");
    assert_eq!(anchor(" `GET /api/hybrid-leads/export`"), "get-apihybrid-leadsexport");
    let doubled = anchors("# A\n## A\n```\n# not a heading\n```\n");
    assert_eq!(doubled, BTreeSet::from(["a".to_string(), "a-1".to_string()]));
}
