//! Engines built from git revisions, for `cargo xtask compare`.
//!
//! A revision is resolved to its commit id before anything else (so `HEAD~1` means what it meant
//! when the command started). A commit is checked out in a `git worktree` of its own under
//! `target/compare/src/`, built in the target directory every build with other features shares
//! (`target/engine-features/`: the dependencies are built once, for every revision; one lock
//! keeps one build's copy from taking another's binary), and its binary is kept under
//! `target/compare/bin/KEY/smallmind`, KEY naming the engine's inputs at that commit
//! ([`ENGINE_INPUTS`]: sources, manifests, lock file, cargo configuration), the toolchain and the
//! features: a commit whose engine inputs were built before is not rebuilt, whatever else it
//! changed. Such a binary reports the commit it was first built from; tasks record the revision
//! they asked for (compare's `CompareRecord`, backfill's commit). The working tree (uncommitted
//! changes included) is built where it is, like any experiment's engine, and is never cached.

use crate::error::{Error, PathContext, usage};
use crate::paths::target_dir;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A revision to build an engine from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Revision {
    /// As the user wrote it (`HEAD~1`, `main`), or `working tree`.
    pub spec: String,
    /// The full commit id (for the working tree: its `HEAD`).
    pub commit: String,
    /// Whether this is the working tree rather than a commit.
    pub working_tree: bool,
    /// Whether the working tree has uncommitted changes to tracked files.
    pub dirty: bool,
}

impl Revision {
    /// Resolves `spec` to a commit, as a usage error naming it when git does not know it.
    pub fn resolve(spec: &str) -> Result<Revision> {
        let commit =
            git(&["rev-parse", "--verify", "--quiet", "--end-of-options", &format!("{spec}^{{commit}}")])
                .ok_or_else(|| {
                    usage(format!("`{spec}` is not a commit of this repository (git rev-parse found none)"))
                })?;
        Ok(Revision { spec: spec.to_string(), commit, working_tree: false, dirty: false })
    }

    /// The working tree, with its `HEAD` commit and whether it has uncommitted changes.
    pub fn working_tree() -> Result<Revision> {
        let commit = git(&["rev-parse", "--verify", "HEAD"]).context("this repository has no HEAD commit")?;
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Ok(Revision { spec: "working tree".into(), commit, working_tree: true, dirty })
    }

    /// The first 10 characters of the commit, with `+dirty` for a working tree with changes.
    pub fn short(&self) -> String {
        let short: String = self.commit.chars().take(10).collect();
        if self.dirty { format!("{short}+dirty") } else { short }
    }

    /// `HEAD~1 (abc1234567)`, or `the working tree (abc1234567, uncommitted changes)`.
    pub fn describe(&self) -> String {
        let short: String = self.commit.chars().take(10).collect();
        match (self.working_tree, self.dirty) {
            (true, true) => format!("the working tree (`{short}` with uncommitted changes)"),
            (true, false) => format!("the working tree (`{short}`)"),
            (false, _) => format!("`{}` (`{short}`)", self.spec),
        }
    }
}

/// The engine binary of `revision` built with the cargo `features`: from the cache when it was
/// built before, else checked out and built (see the module's documentation). A revision that
/// does not build is [`Error::Untestable`], naming it.
pub fn build(revision: &Revision, features: &[String]) -> Result<PathBuf> {
    if revision.working_tree {
        return Ok(super::engine::build(false, features)?.release);
    }
    let base = target_dir().join("compare");
    let mut key = format!("{}-{}", engine_inputs(&revision.commit), toolchain()?);
    if !features.is_empty() {
        key.push('+');
        key.push_str(&features.join("+"));
    }
    let cached = base.join("bin").join(&key).join("smallmind");
    if cached.is_file() {
        eprintln!("{}: the engine built before ({})", revision.describe(), cached.display());
        return Ok(cached);
    }
    let src = base.join("src").join(&revision.commit);
    if !src.join("Cargo.toml").is_file() {
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(src.parent().context("a checkout folder has a parent")?).at(&src)?;
        let added = Command::new("git")
            .args(["worktree", "add", "--quiet", "--detach", "--force"])
            .arg(&src)
            .arg(&revision.commit)
            .current_dir(crate::project_root())
            .status()
            .context("cannot run git")?;
        if !added.success() {
            return Err(Error::Untestable(format!("cannot check out {}", revision.describe())).into());
        }
    }
    let built = {
        let _lock = super::engine::lock_shared_build()?;
        cargo_build(revision, &src, &target_dir().join("engine-features"), features)
            .and_then(|built| keep(&built, &cached))
    };
    // The checkout is only needed to build: the binary is what is kept.
    let _ = Command::new("git")
        .args(["worktree", "remove", "--force"])
        .arg(&src)
        .current_dir(crate::project_root())
        .status();
    built?;
    Ok(cached)
}

/// The files a commit's engine is built from ([`ENGINE_INPUTS`]), as one hash of their git
/// object ids: commits that differ elsewhere (the harness, the docs) share one build.
pub fn engine_inputs(commit: &str) -> String {
    let mut args = vec!["ls-tree", commit, "--"];
    args.extend(ENGINE_INPUTS);
    let listing = git(&args).unwrap_or_else(|| commit.to_string());
    format!("engine-{}", crate::stable_hash(&listing))
}

/// What the engine binary is built from: its sources and build script, the manifests and lock
/// file, and cargo's configuration (its flags).
pub const ENGINE_INPUTS: &[&str] = &["src", "build.rs", "Cargo.toml", "Cargo.lock", ".cargo"];

/// Copies `built` to `cached` through a temporary name.
fn keep(built: &Path, cached: &Path) -> Result<()> {
    let dir = cached.parent().context("a cached binary has a folder")?;
    std::fs::create_dir_all(dir).at(dir)?;
    let temp = dir.join("smallmind.tmp");
    std::fs::copy(built, &temp).at(&temp)?;
    std::fs::rename(&temp, cached).at(cached)?;
    Ok(())
}

fn cargo_build(revision: &Revision, src: &Path, target: &Path, features: &[String]) -> Result<PathBuf> {
    super::engine::require_features(&src.join("Cargo.toml"), features)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--bin", "smallmind", "--target-dir"]).arg(target).current_dir(src);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    eprintln!("building the engine of {} (release, in {})", revision.describe(), target.display());
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        return Err(Error::Untestable(format!(
            "{} does not build (features: {features:?})",
            revision.describe()
        ))
        .into());
    }
    Ok(target.join("release").join("smallmind"))
}

/// The toolchain's version and commit, as part of a cache key (`1.95.0-0123456789`).
fn toolchain() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).arg("-vV").output().context("cannot run rustc")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().chars().take(10).collect::<String>())
    };
    Ok(format!(
        "{}-{}",
        field("release:").unwrap_or_else(|| "unknown".into()),
        field("commit-hash:").unwrap_or_else(|| "unknown".into())
    ))
}

/// `git ARGS` in the project, its trimmed output when it succeeds.
pub fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).current_dir(crate::project_root()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
