//! The engine binaries a run measures: the release build, in the workspace's target directory,
//! or in one of its own when extra cargo features are asked for (so that it never replaces the
//! timing binary); and the `dhat-heap` build for heap profiles.

use crate::error::Error;
use crate::paths::target_dir;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engine binaries a run uses.
#[derive(Debug, Clone)]
pub struct Engine {
    pub release: PathBuf,
    /// The `dhat-heap` build, when a heap profile is asked for.
    pub dhat: Option<PathBuf>,
}

/// Builds the engine in release (and the `dhat-heap` build when `with_dhat`) with the cargo
/// `features`. Cargo's output goes to the terminal, after one line saying what is built. A build
/// that fails is [`Error::Untestable`].
pub fn build(with_dhat: bool, features: &[String]) -> Result<Engine> {
    let release = if features.is_empty() {
        build_one(&[], None)?
    } else {
        build_one(features, Some(&target_dir().join("engine-features").join(features.join("+"))))?
    };
    let dhat = if with_dhat {
        let mut with = features.to_vec();
        with.push("dhat-heap".into());
        Some(build_one(&with, Some(&target_dir().join("dhat-heap").join(features.join("+"))))?)
    } else {
        None
    };
    Ok(Engine { release, dhat })
}

fn build_one(features: &[String], dir: Option<&Path>) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--bin", "smallmind"]).current_dir(crate::project_root());
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    if let Some(dir) = dir {
        cmd.arg("--target-dir").arg(dir);
    }
    eprintln!(
        "building the engine (release{}{})",
        if features.is_empty() { String::new() } else { format!(", features {}", features.join(",")) },
        dir.map_or(String::new(), |d| format!(", in {}", d.display()))
    );
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        return Err(Error::Untestable(format!("the engine does not build (features: {features:?})")).into());
    }
    Ok(dir.map_or_else(target_dir, Path::to_path_buf).join("release").join("smallmind"))
}
