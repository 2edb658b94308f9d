//! Every file name the harness reads or writes, and the two ways it writes: one file atomically
//! ([`write_atomic`]), a report folder by stage and swap ([`Publish`]).
//!
//! Nothing a previous run left is touched until the new one has succeeded: a file is written to a
//! temporary name beside it and renamed; a report folder is assembled in a hidden staging folder
//! beside `reports/NAME` and swapped in by two renames.

use crate::error::PathContext;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Committed files stay under this size; larger profiles stay under `target/`.
pub const MAX_COMMITTED_BYTES: u64 = 1_000_000;

/// The files of a report folder, `reports/NAME/`.
pub mod report {
    /// Every raw sample of the run the report shows.
    pub const RESULTS: &str = "results.json";
    /// The report itself.
    pub const README: &str = "README.md";
    /// Profiles under 1 MB, beside the report.
    pub const PROFILES: &str = "profiles";
    /// `cargo xtask bisect`'s page, chart and results.
    pub const BISECT_PAGE: &str = "bisect.md";
    pub const BISECT_CHART: &str = "bisect.svg";
    pub const BISECT_RESULTS: &str = "bisect.json";
    /// The bisect baseline a bisect run compared with, kept so that `report` re-renders the same
    /// comparison after the baseline is replaced.
    pub const BISECT_BEFORE: &str = "bisect-before.json";
    pub const BISECT_PROFILES: &str = "bisect-profiles";
    pub const BISECT_PROFILES_BEFORE: &str = "bisect-profiles-before";
    /// `cargo xtask calibrate`'s page and results.
    pub const CALIBRATION_PAGE: &str = "calibration.md";
    pub const CALIBRATION_RESULTS: &str = "calibration.json";

    /// Whether `file` in a report folder belongs to `bisect` or `calibrate` (and so stays when an
    /// experiment is re-run).
    pub fn is_other_tasks(file: &str) -> bool {
        file.starts_with("bisect") || file.starts_with("calibration")
    }
}

/// Where experiments, reports and baselines live (the repository's folders unless overridden).
#[derive(Debug, Clone)]
pub struct Paths {
    pub experiments: PathBuf,
    pub reports: PathBuf,
    pub baselines: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        let root = crate::project_root();
        Paths {
            experiments: root.join("experiments"),
            reports: root.join("reports"),
            baselines: root.join("baselines"),
        }
    }
}

impl Paths {
    /// `experiments/NAME.toml`.
    pub fn experiment(&self, name: &str) -> PathBuf {
        self.experiments.join(format!("{name}.toml"))
    }

    /// `reports/NAME/`.
    pub fn report(&self, name: &str) -> PathBuf {
        self.reports.join(name)
    }

    /// `baselines/NAME.json`: the run every later report of the experiment is compared with.
    pub fn baseline(&self, name: &str) -> PathBuf {
        self.baselines.join(format!("{name}.json"))
    }

    /// `baselines/NAME.noise.json`: the experiment's noise floors on the baseline's machine
    /// (`cargo xtask calibrate NAME --sessions K --save-baseline`).
    pub fn noise(&self, name: &str) -> PathBuf {
        self.baselines.join(format!("{name}.noise.json"))
    }

    /// `baselines/NAME.bisect.json`: the lattice run a later bisect ranks suspects against.
    pub fn bisect_baseline(&self, name: &str) -> PathBuf {
        self.baselines.join(format!("{name}.bisect.json"))
    }

    /// `baselines/NAME.bisect-profiles/`: the bisect baseline's flame graphs.
    pub fn bisect_baseline_profiles(&self, name: &str) -> PathBuf {
        self.baselines.join(format!("{name}.bisect-profiles"))
    }
}

/// The workspace's target directory (`CARGO_TARGET_DIR` if set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| crate::project_root().join("target"), PathBuf::from)
}

/// `target/xtask/[TASK/]NAME/`: the raw files of a run, deleted as they are read.
pub fn scratch(task: &str, name: &str) -> PathBuf {
    let base = target_dir().join("xtask");
    if task == "experiment" { base.join(name) } else { base.join(task).join(name) }
}

/// `target/experiments/NAME/profiles/`: profiles over [`MAX_COMMITTED_BYTES`].
pub fn large_profiles(name: &str) -> PathBuf {
    target_dir().join("experiments").join(name).join(report::PROFILES)
}

/// A report folder being written: a hidden staging folder beside `reports/NAME` that holds the
/// files the task keeps from the current folder and the ones it writes; [`Publish::commit`] swaps
/// it in. Dropped without a commit, it is removed and the current folder stays as it was.
#[derive(Debug)]
pub struct Publish {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Publish {
    /// Starts `reports/NAME` anew, copying the current folder's entries for which `keep` holds.
    pub fn begin(paths: &Paths, name: &str, keep: impl Fn(&str) -> bool) -> Result<Publish> {
        std::fs::create_dir_all(&paths.reports).at(&paths.reports)?;
        let staging = paths.reports.join(format!(".{name}.staging"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).at(&staging)?;
        }
        std::fs::create_dir_all(&staging).at(&staging)?;
        let publish = Publish { staging, target: paths.report(name), committed: false };
        if publish.target.is_dir() {
            for entry in std::fs::read_dir(&publish.target).at(&publish.target)? {
                let entry = entry.at(&publish.target)?;
                let file = entry.file_name().to_string_lossy().into_owned();
                if keep(&file) {
                    let to = publish.staging.join(&file);
                    if entry.file_type().at(&entry.path())?.is_dir() {
                        copy_dir(&entry.path(), &to)?;
                    } else {
                        std::fs::copy(entry.path(), &to).at(&to)?;
                    }
                }
            }
        }
        Ok(publish)
    }

    /// The staging folder: where the task writes.
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// Writes `bytes` as `file` in the staging folder.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let path = self.staging.join(file);
        std::fs::write(&path, bytes).at(&path)?;
        Ok(())
    }

    /// Checks that no file is over [`MAX_COMMITTED_BYTES`], then replaces `reports/NAME` by the
    /// staging folder with two renames (the old folder is deleted only after).
    pub fn commit(mut self) -> Result<PathBuf> {
        for entry in std::fs::read_dir(&self.staging).at(&self.staging)? {
            let entry = entry.at(&self.staging)?;
            let size = entry.metadata().at(&entry.path())?.len();
            if entry.file_type().at(&entry.path())?.is_file() && size > MAX_COMMITTED_BYTES {
                bail!("{} is {size} bytes, over the 1 MB a committed file may have", entry.path().display());
            }
        }
        let name = self.target.file_name().context("a report folder has a name")?.to_string_lossy();
        let old = self.target.with_file_name(format!(".{name}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        if self.target.exists() {
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("cannot move {} aside", self.target.display()))?;
        }
        std::fs::rename(&self.staging, &self.target)
            .with_context(|| format!("cannot move the new report into {}", self.target.display()))?;
        self.committed = true;
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        Ok(self.target.clone())
    }
}

impl Drop for Publish {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Copies the files of `from` (not its subfolders) into `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).at(to)?;
    for entry in std::fs::read_dir(from).at(from)? {
        let entry = entry.at(from)?;
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).at(&target)?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().context("a file path has a parent")?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".xtask.").suffix(".tmp");
    // Committed files get the usual mode (less the umask), not tempfile's 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut temp = builder.tempfile_in(dir).at(dir)?;
    temp.write_all(bytes).at(path)?;
    temp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
