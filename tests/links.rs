//! Links: every relative link in the repository's markdown resolves.
//!
//! The rule: in every `*.md` file of the repository (outside `target/`, hidden folders and
//! `xtask/test_data/`, whose golden pages link into folders that exist only in a test), every
//! link `[text](dest)`, image `![alt](dest)` and reference definition `[label]: dest` that is
//! not a URL names a file or folder that exists, relative to the file that holds it; and an
//! `#anchor` (alone, or after a markdown file) names a heading of that file by GitHub's slug:
//! the heading's text without its markup, lower-cased, every character but letters, digits,
//! `-` and `_` dropped, spaces turned into `-`, and a repeated slug suffixed `-1`, `-2`, ...
//! Fenced code blocks and code spans hold no links. The test fails naming `file:line` and the
//! link for every one that does not resolve.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let broken = broken_links(root);
    assert!(broken.is_empty(), "links that do not resolve:\n{}", broken.join("\n"));
}

/// The rule finds what it is meant to: a missing file, a missing heading in another file and in
/// the same file; and it accepts a good link, a URL, a folder, and links inside code.
#[test]
fn the_rule_finds_a_broken_link_and_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs/sub")).unwrap();
    std::fs::write(
        root.join("docs/a.md"),
        "# Title\n\n## The `check` task: 0/1/2\n\n## Same\n\n## Same\n\n\
         [ok](b.md#wheres-the-time) [ok](#the-check-task-012) [ok](#same-1) [ok](sub/)\n\
         [url](https://example.org/x.md) `[code](missing.md)`\n\
         ```text\n[fenced](missing.md)\n```\n\
         [gone](missing.md) [no heading](b.md#nowhere) [here](#same-2)\n\n\
         [ref]: b.md#wheres-the-time\n[badref]: ../nope.md\n",
    )
    .unwrap();
    std::fs::write(root.join("docs/b.md"), "### Where's the [time](a.md)?\n").unwrap();
    let broken = broken_links(root);
    assert_eq!(
        broken,
        [
            "docs/a.md:14: `missing.md`: no such file",
            "docs/a.md:14: `b.md#nowhere`: no heading `nowhere` in docs/b.md",
            "docs/a.md:14: `#same-2`: no heading `same-2` in docs/a.md",
            "docs/a.md:17: `../nope.md`: no such file",
        ],
        "{broken:#?}"
    );
}

/// Every link of every markdown file under `root` that does not resolve, as `file:line: why`.
fn broken_links(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    markdown_files(root, root, &mut files);
    files.sort();
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        for (line, dest) in links(&text) {
            if let Err(why) = resolve(file, &dest, &text) {
                broken.push(format!("{shown}:{line}: `{dest}`: {why}"));
            }
        }
    }
    broken
}

/// Whether `dest`, written in `file` (whose text is `text`), resolves.
fn resolve(file: &Path, dest: &str, text: &str) -> Result<(), String> {
    if dest.contains("://") || dest.starts_with("mailto:") {
        return Ok(());
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (dest, None),
    };
    let target: PathBuf = if path.is_empty() {
        file.to_path_buf()
    } else {
        let decoded = path.replace("%20", " ");
        file.parent().unwrap().join(decoded)
    };
    if !target.exists() {
        return Err("no such file".into());
    }
    let Some(anchor) = anchor else { return Ok(()) };
    if target.extension().is_none_or(|e| e != "md") {
        return Ok(());
    }
    let target_text =
        if path.is_empty() { text.to_string() } else { std::fs::read_to_string(&target).unwrap() };
    if heading_slugs(&target_text).contains(anchor) {
        Ok(())
    } else {
        let shown = target.components().rev().take(2).collect::<Vec<_>>();
        let shown: PathBuf = shown.iter().rev().collect();
        Err(format!("no heading `{anchor}` in {}", shown.display()))
    }
}

/// The `*.md` files under `dir`, leaving out `target/`, hidden folders and `xtask/test_data/`.
fn markdown_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let skipped = name.starts_with('.')
                || name == "target"
                || name == "node_modules"
                || path.strip_prefix(root).unwrap() == Path::new("xtask/test_data");
            if !skipped {
                markdown_files(root, &path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// Every link destination of a markdown text with its line number, outside code.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        // A reference definition: `[label]: dest`.
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') && !trimmed.starts_with("[^") {
            let close = trimmed.find(']').unwrap_or(0);
            if trimmed[close..].starts_with("]:") {
                let dest = trimmed[close + 2..].split_whitespace().next().unwrap_or("");
                if !dest.is_empty() {
                    found.push((number, dest.trim_matches(['<', '>']).to_string()));
                }
                continue;
            }
        }
        // Inline links and images: `](dest)` or `](dest "title")`.
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = closing_paren(after) else { break };
            let dest = after[..end].split_whitespace().next().unwrap_or("");
            if !dest.is_empty() {
                found.push((number, dest.trim_matches(['<', '>']).to_string()));
            }
            rest = &after[end..];
        }
    }
    found
}

/// Where the `)` that closes a link destination is, allowing balanced parentheses inside it.
fn closing_paren(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The lines outside fenced code blocks, numbered from 1, with their code spans removed.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut fence: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => lines.push((i + 1, without_code_spans(line))),
            _ => {}
        }
    }
    lines
}

/// `line` with every code span (text between matching runs of backticks) removed.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let ticks = &rest[start..start + run];
        let after = &rest[start + run..];
        match after.find(ticks) {
            Some(end) => rest = &after[end + run..],
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The GitHub anchors of a markdown text's headings (ATX headings outside code blocks).
fn heading_slugs(text: &str) -> HashSet<String> {
    let mut slugs = HashSet::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if open == m => {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            (None, None) => {}
        }
        let hashes = trimmed.len() - trimmed.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(trimmed[hashes..].trim().trim_end_matches('#').trim());
        let mut candidate = base.clone();
        let mut n = 0;
        while slugs.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        slugs.insert(candidate);
    }
    slugs
}

/// GitHub's slug of a heading: its text without link targets and backticks, lower-cased,
/// keeping letters, digits, `-` and `_`, spaces as `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](url)` reads as `text`.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](").map(|m| m + open) else { break };
        let Some(end) = closing_paren(&rest[mid + 2..]).map(|e| e + mid + 2) else { break };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..mid]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}
