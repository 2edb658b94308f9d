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
    /// The charts of a report.
    pub const THROUGHPUT_CHART: &str = "throughput.svg";
    pub const TTFT_CHART: &str = "ttft.svg";
    pub const LATENCY_CHART: &str = "latency.svg";
    pub const PHASES_CHART: &str = "phases.svg";
    pub const ALLOCATIONS_CHART: &str = "allocations.svg";

    /// The chart of `metric` across a sweep (`sweep-decode_tok_s.svg`).
    pub fn sweep_chart(metric: &str) -> String {
        format!("sweep-{metric}.svg")
    }
    /// `cargo xtask bisect`'s page, chart and results.
    pub const BISECT_PAGE: &str = "bisect.md";
    pub const BISECT_CHART: &str = "bisect.svg";
    pub const BISECT_RESULTS: &str = "bisect.json";
    /// The bisect baseline a bisect run compared with, kept so that `report` re-renders the same
    /// comparison after the baseline is replaced.
    pub const BISECT_BEFORE: &str = "bisect-before.json";
    pub const BISECT_PROFILES: &str = "bisect-profiles";
    pub const BISECT_PROFILES_BEFORE: &str = "bisect-profiles-before";
    /// The profile diff of the first suspect's on/off pair.
    pub const BISECT_DIFFS: &str = "bisect-diffs";
    /// `cargo xtask calibrate`'s page and results.
    pub const CALIBRATION_PAGE: &str = "calibration.md";
    pub const CALIBRATION_RESULTS: &str = "calibration.json";
    /// `cargo xtask history`'s page (its chart is `history-METRIC.svg`).
    pub const HISTORY_PAGE: &str = "history.md";

    /// Whether `file` in a report folder belongs to `bisect`, `calibrate` or `history` (and so
    /// stays when an experiment is re-run).
    pub fn is_other_tasks(file: &str) -> bool {
        file.starts_with("bisect") || file.starts_with("calibration") || file.starts_with("history")
    }
}

/// Where experiments, reports and baselines live (the repository's folders unless overridden).
#[derive(Debug, Clone)]
pub struct Paths {
    pub experiments: PathBuf,
    pub reports: PathBuf,
    pub baselines: PathBuf,
    /// The results store every run is appended to (see [`crate::store`]).
    pub store: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        let root = crate::project_root();
        Paths {
            experiments: root.join("experiments"),
            reports: root.join("reports"),
            baselines: root.join("baselines"),
            store: crate::store::default_path(),
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

    /// `target/xtask/locks/NAME-HASH.lock`: held by the run that measures or publishes
    /// experiment `NAME` into this reports folder (`HASH` names the folder: tests and checkouts
    /// with reports of their own do not hold each other up) ([`RunLock`]). Under `target/`, so
    /// that neither the reports nor the repository ever hold one.
    pub fn lock(&self, name: &str) -> PathBuf {
        let reports = std::path::absolute(&self.reports).unwrap_or_else(|_| self.reports.clone());
        let hash = crate::stable_hash(&reports.to_string_lossy());
        target_dir().join("xtask").join("locks").join(format!("{name}-{hash}.lock"))
    }

    /// `baselines/NAME.bisect-profiles/`: the bisect baseline's flame graphs.
    pub fn bisect_baseline_profiles(&self, name: &str) -> PathBuf {
        self.baselines.join(format!("{name}.bisect-profiles"))
    }
}

/// One run of an experiment at a time: held from a task's start to its end, so that a second run
/// of the same experiment (which would share its scratch and staging folders, measure while the
/// first one does, and write the same report) is refused at its start, naming the first, instead
/// of failing minutes later. An advisory lock ([`Paths::lock`], `flock`): the system
/// releases it when its process ends, however it ends, so a crashed run never leaves it stuck.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

impl RunLock {
    /// Takes experiment `name`'s lock for this process, or refuses (a usage error) naming the
    /// process that holds it and its command line.
    pub fn take(paths: &Paths, name: &str) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = paths.lock(name);
        let dir = path.parent().context("a lock file has a folder")?;
        std::fs::create_dir_all(dir).at(dir)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(crate::error::usage(format!(
                    "`{name}` is being run by another process ({}): two runs at once would measure each other and \
                     write the same report; wait for it to end (or stop it), then run again",
                    if holder.is_empty() { "it has not said which" } else { holder }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => Err::<(), _>(e).at(&path)?,
        }
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let args: Vec<String> = std::env::args().skip(1).collect();
        let line = format!("pid {}, `cargo xtask {}`, since {since}", std::process::id(), args.join(" "));
        file.set_len(0).at(&path)?;
        file.rewind().at(&path)?;
        file.write_all(line.as_bytes()).at(&path)?;
        Ok(RunLock { _file: file })
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

/// One process's results file in a run's scratch folder: `p0-cached-r2.json` for point 0,
/// variant `cached`, `what` = `r2` (round 2) or `check` (the correctness check).
pub fn scratch_file(scratch: &Path, point: usize, variant: &str, what: &str) -> PathBuf {
    scratch.join(format!("p{point}-{variant}-{what}.json"))
}

/// `target/experiments/NAME/profiles/`: profiles over [`MAX_COMMITTED_BYTES`].
pub fn large_profiles(name: &str) -> PathBuf {
    target_dir().join("experiments").join(name).join(report::PROFILES)
}

/// A report folder being written: a hidden staging folder beside `reports/NAME`, one per task,
/// where the task writes; [`Publish::commit`] adds the current folder's entries the task keeps
/// (as they are then, not as they were when the task began) and swaps it in. Dropped without a
/// commit, it is removed and the current folder stays as it was.
#[derive(Debug)]
pub struct Publish {
    staging: PathBuf,
    target: PathBuf,
    /// Which of the current folder's entries stay (those the task does not write).
    keep: fn(&str) -> bool,
    committed: bool,
}

impl Publish {
    /// Starts writing `reports/NAME` for `task`; `keep` says which of the current folder's
    /// entries stay.
    pub fn begin(paths: &Paths, name: &str, task: &str, keep: fn(&str) -> bool) -> Result<Publish> {
        std::fs::create_dir_all(&paths.reports).at(&paths.reports)?;
        let staging = paths.reports.join(format!(".{name}.{task}.staging"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).at(&staging)?;
        }
        std::fs::create_dir_all(&staging).at(&staging)?;
        Ok(Publish { staging, target: paths.report(name), keep, committed: false })
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

    /// Copies the current folder's kept entries the task did not write, checks that no file is
    /// over [`MAX_COMMITTED_BYTES`], then replaces `reports/NAME` by the staging folder with two
    /// renames. The old folder is deleted only after (a failure to delete it is said, not
    /// fatal); if the second rename fails, the old folder is put back.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.copy_kept()?;
        check_sizes(&self.staging)?;
        let name = self.target.file_name().context("a report folder has a name")?.to_string_lossy();
        let old = self.target.with_file_name(format!(".{name}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).at(&old)?;
        }
        let moved_aside = self.target.exists();
        if moved_aside {
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("cannot move {} aside", self.target.display()))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            if moved_aside {
                let _ = std::fs::rename(&old, &self.target);
            }
            return Err(e)
                .with_context(|| format!("cannot move the new report into {}", self.target.display()));
        }
        self.committed = true;
        if old.exists()
            && let Err(e) = std::fs::remove_dir_all(&old)
        {
            eprintln!("warning: the previous report stays in {}: {e}", old.display());
        }
        Ok(self.target.clone())
    }

    fn copy_kept(&self) -> Result<()> {
        if !self.target.is_dir() {
            return Ok(());
        }
        for entry in std::fs::read_dir(&self.target).at(&self.target)? {
            let entry = entry.at(&self.target)?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let to = self.staging.join(&file);
            if !(self.keep)(&file) || to.exists() {
                continue;
            }
            if entry.file_type().at(&entry.path())?.is_dir() {
                copy_dir(&entry.path(), &to)?;
            } else {
                std::fs::copy(entry.path(), &to).at(&to)?;
            }
        }
        Ok(())
    }
}

/// No file in `dir` or its folders is over [`MAX_COMMITTED_BYTES`].
fn check_sizes(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let path = entry.path();
        if entry.file_type().at(&path)?.is_dir() {
            check_sizes(&path)?;
            continue;
        }
        let size = entry.metadata().at(&path)?.len();
        if size > MAX_COMMITTED_BYTES {
            bail!("{} is {size} bytes, over the 1 MB a committed file may have", path.display());
        }
    }
    Ok(())
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
