//! The engine binaries a run measures: the release build, in the workspace's target directory;
//! builds with other cargo features (the `dhat-heap` build for heap profiles, test-only
//! features) in one target directory of their own, `target/engine-features/`, so that they never
//! replace the timing binary and share one build of the dependencies, each binary copied to a
//! name of its own there (`smallmind+dhat-heap`).
//!
//! The harness and the engine must agree on the table of optimizations: [`build`] asks the
//! binary (`smallmind optimizations --json`) and refuses one whose table differs.

use crate::error::{Error, PathContext};
use crate::paths::target_dir;
use anyhow::{Context, Result};
use smallmind::Optimization;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engine binaries a run uses.
#[derive(Debug, Clone)]
pub struct Engine {
    pub release: PathBuf,
    /// The `dhat-heap` build, when a heap profile is asked for.
    pub dhat: Option<PathBuf>,
    /// Per variant (by index), the binary that runs it when variants run different engines
    /// (`compare`: two revisions); empty when every variant runs `release`.
    pub per_variant: Vec<PathBuf>,
}

impl Engine {
    /// The binary that runs variant `v`.
    pub fn release_for(&self, v: usize) -> &Path {
        self.per_variant.get(v).unwrap_or(&self.release)
    }
}

/// Builds the engine in release (and the `dhat-heap` build when `with_dhat`) with the cargo
/// `features`. Cargo's output goes to the terminal, after one line saying what is built. A build
/// that fails is [`Error::Untestable`].
pub fn build(with_dhat: bool, features: &[String]) -> Result<Engine> {
    let release = build_one(features)?;
    check_table(&release)?;
    let dhat = if with_dhat {
        let mut with = features.to_vec();
        with.push("dhat-heap".into());
        Some(build_one(&with)?)
    } else {
        None
    };
    Ok(Engine { release, dhat, per_variant: Vec::new() })
}

/// Builds the engine with `features`; gives its binary.
fn build_one(features: &[String]) -> Result<PathBuf> {
    require_features(&crate::project_root().join("Cargo.toml"), features)?;
    let dir = (!features.is_empty()).then(|| target_dir().join("engine-features"));
    let dir = dir.as_deref();
    // Two builds with other features share the folder: the lock keeps one's copy from taking the
    // other's binary.
    let _lock = if dir.is_some() { Some(lock_shared_build()?) } else { None };
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
    let built = dir.map_or_else(target_dir, Path::to_path_buf).join("release").join("smallmind");
    let Some(dir) = dir else { return Ok(built) };
    // The next build with other features replaces `smallmind`: keep this one under its own name.
    let named = dir.join("release").join(format!("smallmind+{}", features.join("+")));
    let temp = named.with_extension("tmp");
    std::fs::copy(&built, &temp).at(&temp)?;
    std::fs::rename(&temp, &named).at(&named)?;
    Ok(named)
}

/// Refuses (a usage error, exit 2) a feature the engine's manifest at `manifest` does not
/// declare, naming it and the features it has. Checked before cargo runs: cargo's own refusal
/// would read as "the engine does not build", and `git bisect run` would skip every commit on
/// the user's typo.
pub fn require_features(manifest: &Path, features: &[String]) -> Result<()> {
    let text = std::fs::read_to_string(manifest).at(manifest)?;
    let parsed: toml::Table =
        text.parse().with_context(|| format!("{}: not a cargo manifest", manifest.display()))?;
    let declared: Vec<&str> = parsed
        .get("features")
        .and_then(|f| f.as_table())
        .map(|t| t.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let optional: Vec<&str> = parsed
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| {
            t.iter()
                .filter(|(_, v)| v.get("optional").and_then(|o| o.as_bool()) == Some(true))
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    for feature in features {
        let name = feature.strip_prefix("dep:").unwrap_or(feature);
        if !declared.contains(&name) && !optional.contains(&name) {
            return Err(crate::error::usage(format!(
                "--engine-features: the engine has no feature `{feature}` (it has: {})",
                declared.join(", ")
            )));
        }
    }
    Ok(())
}

/// Holds the lock of `target/engine-features/` until dropped: builds there share the folder,
/// and a build's binary is copied to its own name before another build may replace it.
pub fn lock_shared_build() -> Result<std::fs::File> {
    let dir = target_dir().join("engine-features");
    std::fs::create_dir_all(&dir).at(&dir)?;
    let path = dir.join(".xtask.lock");
    let file = std::fs::File::create(&path).at(&path)?;
    file.lock().at(&path)?;
    Ok(file)
}

/// Refuses an engine whose table of optimizations is not the harness's (the harness would set
/// toggles the engine lacks, or leave one unset). An engine older than `smallmind optimizations`
/// cannot say: that is said on one line, and the harness's table is assumed.
pub fn check_table(binary: &Path) -> Result<()> {
    let harness: Vec<&str> = Optimization::ALL.iter().map(|o| o.name()).collect();
    let output = Command::new(binary)
        .args(["optimizations", "--json"])
        .output()
        .map_err(|e| Error::Untestable(format!("cannot run {}: {e}", binary.display())))?;
    let listed = Some(output).filter(|o| o.status.success()).and_then(|o| {
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).ok()?;
        rows.iter().map(|r| r.get("name")?.as_str().map(str::to_string)).collect::<Option<Vec<String>>>()
    });
    match listed {
        None => eprintln!(
            "note: {} does not list its optimizations (older than `smallmind optimizations`); assuming this \
             harness's table ({})",
            binary.display(),
            harness.join(", ")
        ),
        Some(engine) if engine != harness => {
            return Err(Error::Untestable(format!(
                "the engine's optimizations ({}) are not this harness's ({}): build the harness from the engine's revision",
                engine.join(", "),
                harness.join(", ")
            ))
            .into());
        }
        Some(_) => {}
    }
    Ok(())
}
