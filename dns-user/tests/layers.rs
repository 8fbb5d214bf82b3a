//! No module imports upward: each top-level module of `dns-user/src` uses `crate::` paths only
//! into its own layer or the ones below (the order `lib.rs` documents). Tests inside a module
//! and comments are not counted.

use std::collections::HashMap;
use std::path::Path;

/// Bottom to top.
const LAYERS: &[&[&str]] = &[
    &["text", "files", "progress", "privileges", "sdnotify"],
    &["policy", "location", "rrl", "dnstap", "signing"],
    &["health"],
    &["zone"],
    &["fastpath"],
    &["publish"],
    &["server"],
    &["http", "config", "route53"],
    &["control", "metrics", "cluster"],
    &["daemon", "cli", "client", "takeover"],
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_upward() {
    let layer: HashMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (*n, i)))
        .collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut modules = 0;
    for path in &files {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let top = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let own = *layer
            .get(top.as_str())
            .unwrap_or_else(|| panic!("{relative}: module {top} has no layer in LAYERS"));
        modules += 1;
        let text = std::fs::read_to_string(path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("crate::") {
                let used: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                let Some(&theirs) = layer.get(used.as_str()) else {
                    continue;
                };
                if used != top && theirs > own {
                    upward.push(format!("{relative}:{}: {top} uses {used}", n + 1));
                }
            }
        }
    }
    assert!(
        modules > 30,
        "only {modules} files found under {}",
        src.display()
    );
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}
