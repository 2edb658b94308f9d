//! Tidy: no import cycles between sibling modules of `src/`.
//!
//! The rule: every module of the crate is a file (`src/a/b.rs` or `src/a/b/mod.rs` is `a::b`).
//! A file *uses* a module when its code (comments and `#[cfg(test)] mod tests` excluded) names a
//! path through it, written `crate::a::b`, `super::b` or `self::b` (`use` lines, braces
//! included, and paths in code alike). For a use from module `m` of module `t`, take their
//! deepest common ancestor `p`: when neither contains the other, that is an edge between the
//! two children of `p` on the way to `m` and to `t` (`models::gpt2::hf` using
//! `models::safetensors_io` is the edge `gpt2 -> safetensors_io` under `models`). Uses of an
//! ancestor or a descendant are not edges. Under every parent, the edges must form no cycle;
//! the test fails naming the cycle and one `file:line` per edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, `["models", "gpt2", "hf"]`; the crate root is empty.
type ModPath = Vec<String>;

/// One use: where it was written and the module path it names.
struct Use {
    from: ModPath,
    to: ModPath,
    at: String,
}

#[test]
fn sibling_modules_import_each_other_in_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut uses = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let from = module_of(&src, file);
        let shown = file.strip_prefix(src.parent().unwrap()).unwrap().display().to_string();
        uses.extend(uses_in(&text, &from, &modules, &shown));
    }
    let cycles = sibling_cycles(&uses);
    assert!(cycles.is_empty(), "import cycles between sibling modules:\n{}", cycles.join("\n"));
}

/// The rule finds the cycles it is meant to: a pair of siblings, and one through `super::`.
#[test]
fn the_rule_finds_a_planted_cycle() {
    let modules: BTreeSet<ModPath> = ["", "a", "a::x", "a::y", "b"].iter().map(|m| path(m)).collect();
    let mut uses = uses_in("use crate::a::y::Thing;", &path("a::x"), &modules, "x.rs");
    uses.extend(uses_in("// about\nuse super::{\n    b,\n    x::g,\n};", &path("a::y"), &modules, "y.rs"));
    uses.extend(uses_in("use crate::{a::x, b};\n// use crate::b::c;", &path(""), &modules, "lib.rs"));
    let cycles = sibling_cycles(&uses);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0], "under `a`: x -> y -> x (x.rs:1, y.rs:2)");
    // A use of an ancestor or a descendant is no edge; nor is a comment.
    let none = uses_in("use super::*; use crate::a::x::f; // crate::b", &path("a"), &modules, "a.rs");
    assert!(sibling_cycles(&none).is_empty());
}

fn path(m: &str) -> ModPath {
    m.split("::").filter(|s| !s.is_empty()).map(String::from).collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` the root.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: ModPath = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// Every module path named in `text`, a file of module `from`, through `crate::`, `super::` or
/// `self::`, reduced to the longest prefix that is a module in `modules`.
fn uses_in(text: &str, from: &ModPath, modules: &BTreeSet<ModPath>, file: &str) -> Vec<Use> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
    // Comments out, lines kept (a `use` may span several): offsets still give line numbers.
    let code: Vec<&str> = code.lines().map(|line| line.split("//").next().unwrap()).collect();
    let code = code.join("\n");
    let mut uses = Vec::new();
    for (i, _) in code.match_indices("::") {
        let Some(root) = word_before(&code, i) else { continue };
        let rest = &code[i + 2..];
        let base: ModPath = match root {
            "crate" => Vec::new(),
            "self" => from.clone(),
            // `super::super::x`: one level up per `super`.
            "super" => {
                let levels = 1 + (rest.len() - rest.trim_start_matches("super::").len()) / "super::".len();
                from[..from.len().saturating_sub(levels)].to_vec()
            }
            _ => continue,
        };
        let line = code[..i].matches('\n').count() + 1;
        for tail in expand(rest.trim_start_matches("super::")) {
            let mut target = base.clone();
            target.extend(tail);
            while !modules.contains(&target) {
                target.pop();
            }
            uses.push(Use { from: from.clone(), to: target, at: format!("{file}:{line}") });
        }
    }
    uses
}

/// The identifier just before byte `i` of `text`, when it is a path root.
fn word_before(text: &str, i: usize) -> Option<&str> {
    let start = text[..i].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |s| s + 1);
    let word = &text[start..i];
    let preceded_by_path = text[..start].ends_with("::");
    (!preceded_by_path && matches!(word, "crate" | "self" | "super")).then_some(word)
}

/// The paths of a use tree's text: `a::b::{c, d::e}` is `[a, b, c]` and `[a, b, d, e]`; a path
/// in code (`a::b::f(x)`) is its identifiers.
fn expand(text: &str) -> Vec<ModPath> {
    fn tree(text: &str, pos: &mut usize) -> Vec<ModPath> {
        let bytes = text.as_bytes();
        let mut prefix = ModPath::new();
        loop {
            let start = *pos;
            while *pos < bytes.len() && (bytes[*pos].is_ascii_alphanumeric() || bytes[*pos] == b'_') {
                *pos += 1;
            }
            if *pos > start {
                prefix.push(text[start..*pos].to_string());
            }
            if text[*pos..].starts_with("::") {
                *pos += 2;
                continue;
            }
            if bytes.get(*pos) == Some(&b'{') {
                *pos += 1;
                let mut all = Vec::new();
                loop {
                    while bytes.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
                        *pos += 1;
                    }
                    for sub in tree(text, pos) {
                        all.push(prefix.iter().cloned().chain(sub).collect());
                    }
                    while bytes.get(*pos).is_some_and(|b| b.is_ascii_whitespace()) {
                        *pos += 1;
                    }
                    match bytes.get(*pos) {
                        Some(b',') => *pos += 1,
                        Some(b'}') => {
                            *pos += 1;
                            return all;
                        }
                        _ => return all,
                    }
                }
            }
            return vec![prefix];
        }
    }
    tree(text, &mut 0)
}

/// Each cycle among the edges under one parent, as `under `p`: a -> b -> a (file:line, ...)`.
fn sibling_cycles(uses: &[Use]) -> Vec<String> {
    // parent -> child -> (child it uses -> where)
    let mut graph: BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
    for u in uses {
        let common = u.from.iter().zip(&u.to).take_while(|(a, b)| a == b).count();
        if common == u.from.len() || common == u.to.len() {
            continue; // an ancestor or a descendant, or itself
        }
        let parent = u.from[..common].to_vec();
        let edges = graph.entry(parent).or_default();
        edges.entry(u.from[common].clone()).or_default().entry(u.to[common].clone()).or_insert(u.at.clone());
    }
    let mut cycles = Vec::new();
    for (parent, edges) in &graph {
        let mut done = BTreeSet::new();
        for start in edges.keys() {
            let mut stack = vec![start.clone()];
            if let Some(cycle) = find_cycle(edges, &mut stack, &mut done) {
                done.extend(cycle.iter().cloned()); // each cycle once, not once per member
                let at: Vec<&str> = cycle.windows(2).map(|w| edges[&w[0]][&w[1]].as_str()).collect();
                cycles.push(format!(
                    "under `{}`: {} ({})",
                    parent.join("::"),
                    cycle.join(" -> "),
                    at.join(", ")
                ));
            }
        }
    }
    cycles
}

/// Depth-first from the top of `stack`; the first cycle found, closed (`[a, b, a]`).
fn find_cycle(
    edges: &BTreeMap<String, BTreeMap<String, String>>,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let node = stack.last().unwrap().clone();
    if done.contains(&node) {
        return None;
    }
    for next in edges.get(&node).into_iter().flat_map(|e| e.keys()) {
        if let Some(i) = stack.iter().position(|n| n == next) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(next.clone());
            return Some(cycle);
        }
        stack.push(next.clone());
        let found = find_cycle(edges, stack, done);
        stack.pop();
        if found.is_some() {
            return found;
        }
    }
    done.insert(node);
    None
}
