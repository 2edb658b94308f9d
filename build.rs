//! Build provenance for results files: the git commit and dirty flag of the tree this binary was
//! built from, the compiler, the profile, and the target features it was compiled for. Read by
//! `src/bench/env.rs` through `env!`; nothing else is generated.

use std::path::Path;
use std::process::Command;

fn main() {
    // The tree's state changes with the sources and with git's own records of HEAD and the index.
    for path in ["src", "tests", "benches", "build.rs", "Cargo.toml", "Cargo.lock", ".git/HEAD", ".git/index"]
    {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let path = format!(".git/{reference}");
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");

    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(status) => (!status.is_empty()).to_string(),
        None => "unknown".into(),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".into(), |v| v.trim().to_string());
    // OUT_DIR is target/<profile>/build/<crate>/out: the profile's directory name is the
    // honest answer for custom profiles (`profiling`), where PROFILE only says "release".
    let out_dir = std::env::var("OUT_DIR").unwrap_or_default();
    let profile = Path::new(&out_dir)
        .ancestors()
        .nth(3)
        .and_then(|p| p.file_name())
        .map_or_else(|| std::env::var("PROFILE").unwrap_or_default(), |n| n.to_string_lossy().into_owned());
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default().replace('\x1f', " ");
    let target_features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();

    let vars = [
        ("SMALLMIND_GIT_COMMIT", commit),
        ("SMALLMIND_GIT_DIRTY", dirty),
        ("SMALLMIND_RUSTC_VERSION", rustc_version),
        ("SMALLMIND_BUILD_PROFILE", profile),
        ("SMALLMIND_OPT_LEVEL", std::env::var("OPT_LEVEL").unwrap_or_default()),
        ("SMALLMIND_RUSTFLAGS", rustflags),
        ("SMALLMIND_TARGET", std::env::var("TARGET").unwrap_or_default()),
        ("SMALLMIND_TARGET_FEATURES", target_features),
    ];
    for (name, value) in vars {
        println!("cargo:rustc-env={name}={value}");
    }
}

/// The trimmed output of a successful `git` command, or `None` (no git, not a repository).
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}
