//! Commits made for a test from `HEAD` with `git commit-tree`: no branch, index or working file
//! changes, and git collects them later. Shared by the tests that build other revisions, with the
//! fixed probe those tests run under.

#![allow(dead_code, reason = "each test binary uses some of these helpers")]

use std::io::Write;
use std::process::{Command, Stdio};

/// The probe's readings fixed (`SMALLMIND_PROBE`, test-only), for tests about finding a slowed
/// revision or toggle rather than about the machine. On a shared machine the measured probe can
/// move beyond its tolerance between two runs (the FMA peak read 177 and then 159 GFLOP/s on a
/// 2-core Intel Xeon, family 6 model 207), and the workbench then rightly judges nothing:
/// `tests/machine.rs` proves that path. A fixed probe also takes no time, where a measured one
/// took 1.1-1.7 s per reading there, twice in every bench process.
pub const FIXED_PROBE: (&str, &str) = ("SMALLMIND_PROBE", "fixed=20,70,110");

/// `git ARGS` in the project, with `input` on stdin; its trimmed output.
pub fn git(args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(xtask::project_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git runs");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The tree `tree` with the file at `path` (components) replaced by blob `blob`.
pub fn replace(tree: &str, path: &[&str], blob: &str) -> String {
    let listing = git(&["ls-tree", tree], None);
    let lines: Vec<String> = listing
        .lines()
        .map(|line| {
            let (meta, name) = line.split_once('\t').unwrap();
            if name != path[0] {
                return line.to_string();
            }
            let object = meta.split_whitespace().nth(2).unwrap();
            if path.len() == 1 {
                format!("100644 blob {blob}\t{name}")
            } else {
                format!("040000 tree {}\t{name}", replace(object, &path[1..], blob))
            }
        })
        .collect();
    git(&["mktree"], Some(&(lines.join("\n") + "\n")))
}

/// A commit of `HEAD`'s tree with `file` edited by `edit`, on `HEAD`; its id.
pub fn commit_with(file: &str, edit: impl Fn(&str) -> String) -> String {
    let tree = tree_with(file, edit);
    git(&["commit-tree", &tree, "-p", "HEAD", "-m", &format!("compare test: {file} edited")], None)
}

/// `HEAD`'s tree with `file` edited by `edit`; its id.
pub fn tree_with(file: &str, edit: impl Fn(&str) -> String) -> String {
    let text = git(&["show", &format!("HEAD:{file}")], None);
    let edited = edit(&text);
    assert_ne!(edited, text, "the edit of {file} changes it");
    let blob = git(&["hash-object", "-w", "--stdin"], Some(&edited));
    replace("HEAD^{tree}", &file.split('/').collect::<Vec<_>>(), &blob)
}

/// A commit of `tree` on `parent` with a fixed author and date, so the same call gives the same
/// commit id every time; its id.
pub fn commit_tree(tree: &str, parent: &str, message: &str) -> String {
    let out = Command::new("git")
        .args(["commit-tree", tree, "-p", parent, "-m", message])
        .env("GIT_AUTHOR_NAME", "smallmind tests")
        .env("GIT_AUTHOR_EMAIL", "tests@smallmind.invalid")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "smallmind tests")
        .env("GIT_COMMITTER_EMAIL", "tests@smallmind.invalid")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .current_dir(xtask::project_root())
        .stdin(Stdio::null())
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git commit-tree failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
