//! The results store: one SQLite file (default `target/smallmind-results.sqlite`, or
//! `--store FILE`, or `$SMALLMIND_STORE`) to which every run of every task appends, so that what
//! the numbers were last week is still there. Committed reports and baselines stay as they are,
//! for review; the store is history, outside git.
//!
//! Append-only: a run is written in one transaction (an interrupted run leaves the store as it
//! was) and never changed afterwards. The schema's version is SQLite's `user_version`; opening an
//! older store runs the [`MIGRATIONS`] after it, and a newer one is refused, named.
//!
//! Tables (see [`MIGRATIONS`] for the columns):
//! - `sessions`: one per task run on one experiment (task, experiment, times, command, rounds, the
//!   hardware fingerprint and its summary, the cargo features the harness built the engine with
//!   (`--engine-features`; a commit's own default features are its code, not listed; sessions
//!   written before schema 2 list the features the engine reported), the whole environment and
//!   experiment as JSON);
//! - `variants`: one per variant and sweep point of a session (point label, toggles, workload,
//!   the commit and dirty flag of the engine that ran it, the token digest);
//! - `processes`: one per measured process (round, position, probe bandwidth, whether it was
//!   flagged busy, and its whole record as the engine wrote it: every raw sample);
//! - `samples`: each process's value of each metric, by pass (`timed` ops or the `phase` pass);
//! - `commits`: each commit's time and subject, read from git when a run is appended.
//!
//! This module writes and reads rows; [`query`] answers questions (lists, series, exports).

pub mod export;
pub mod query;

use crate::error::{PathContext, usage};
use crate::metrics::Metric;
use crate::results::{ExperimentResults, VariantResults};
use anyhow::{Context, Result};
use rusqlite::{Connection, Transaction, params};
use smallmind::bench::env::Environment;
use std::path::{Path, PathBuf};

/// The environment variable naming the store file.
pub const STORE_VAR: &str = "SMALLMIND_STORE";

/// The store's file when neither `--store` nor [`STORE_VAR`] names one.
pub fn default_path() -> PathBuf {
    match std::env::var_os(STORE_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::paths::target_dir().join("smallmind-results.sqlite"),
    }
}

/// The schema, one migration per version: the store at version `v` runs `MIGRATIONS[v..]`.
pub const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        task TEXT NOT NULL,
        experiment TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        command TEXT NOT NULL,
        rounds INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        machine TEXT NOT NULL,
        environment TEXT NOT NULL,
        spec TEXT NOT NULL
    );
    CREATE TABLE variants (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        point TEXT NOT NULL,
        variant TEXT NOT NULL,
        reference INTEGER NOT NULL,
        toggles TEXT NOT NULL,
        workload TEXT NOT NULL,
        commit_hash TEXT NOT NULL,
        dirty INTEGER NOT NULL,
        digest TEXT NOT NULL
    );
    CREATE TABLE processes (
        id INTEGER PRIMARY KEY,
        variant_id INTEGER NOT NULL REFERENCES variants(id),
        round INTEGER NOT NULL,
        position INTEGER NOT NULL,
        bandwidth_gb_s REAL,
        busy INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE samples (
        process_id INTEGER NOT NULL REFERENCES processes(id),
        metric TEXT NOT NULL,
        pass TEXT NOT NULL,
        value REAL NOT NULL
    );
    CREATE TABLE commits (
        hash TEXT PRIMARY KEY,
        time INTEGER NOT NULL,
        subject TEXT NOT NULL
    );
    CREATE INDEX variants_by_session ON variants(session_id);
    CREATE INDEX processes_by_variant ON processes(variant_id);
    CREATE INDEX samples_by_process ON samples(process_id);
    CREATE INDEX sessions_by_experiment ON sessions(experiment, fingerprint);
",
    "
    ALTER TABLE sessions ADD COLUMN features TEXT NOT NULL DEFAULT '';
    UPDATE sessions SET features = coalesce(
        (SELECT group_concat(value, ',') FROM json_each(json_extract(environment, '$.features'))), '');
",
];

/// The schema version this harness writes.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating it and its folder if needed) the store at `path` to append to it,
    /// migrating an older schema. A file that is not a store (another SQLite database
    /// included), or a store of a newer schema, is a usage error naming it, and is left as it
    /// was.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        Store::connect(path)
    }

    /// Opens the existing store at `path` to read it (migrating an older schema): a usage error
    /// when there is none, naming what to do.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if path.is_dir() {
            return Err(usage(format!("{} is a folder, not a results store file", path.display())));
        }
        if !path.is_file() {
            return Err(usage(format!(
                "no results store at {}: every `cargo xtask experiment` (check, compare, ...) run creates it",
                path.display()
            )));
        }
        Store::connect(path)
    }

    fn connect(path: &Path) -> Result<Store> {
        let bad = |e: rusqlite::Error| match is_busy(&e) {
            true => anyhow::Error::new(Locked { path: path.to_path_buf(), holders: holders(path) }),
            false => usage(format!("{}: not a results store ({e})", path.display())),
        };
        let mut conn = Connection::open(path).map_err(bad)?;
        conn.busy_handler(Some(wait_for_the_lock)).map_err(bad)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(bad)?;
        if version < 0 || version as usize > schema_version() {
            return Err(usage(format!(
                "{}: a results store of schema {version}, this harness knows {}; use a newer harness or \
                 another --store",
                path.display(),
                schema_version()
            )));
        }
        let version = version as usize;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
            .map_err(bad)?;
        if version == 0 && tables > 0 {
            return Err(usage(format!(
                "{}: an SQLite database with {tables} table(s) of its own, not a results store; give another --store",
                path.display()
            )));
        }
        if version < schema_version() {
            let tx = conn.transaction().map_err(bad)?;
            for migration in &MIGRATIONS[version..] {
                tx.execute_batch(migration).map_err(|e| {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    usage(format!(
                        "{}: cannot migrate the store from schema {version}: {first}",
                        path.display()
                    ))
                })?;
            }
            tx.pragma_update(None, "user_version", schema_version() as i64).map_err(bad)?;
            tx.commit().map_err(bad)?;
        }
        Ok(Store { conn, path: path.to_path_buf() })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for [`query`].
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Appends one run of `task`, its engine built with the cargo `features` the harness asked
    /// for, in one transaction; its session id.
    pub fn append(&mut self, task: &str, results: &ExperimentResults, features: &[String]) -> Result<i64> {
        let context = || format!("appending to the results store {}", self.path.display());
        let tx = self.conn.transaction().with_context(context)?;
        let id = insert_session(&tx, task, results, features).with_context(context)?;
        tx.commit().with_context(context)?;
        Ok(id)
    }
}

/// Appends `results` to the store at `store`, said on one line when it fails: the store is
/// history, and a run whose report is written is not lost for want of it. `features` are the
/// cargo features the harness built the engine with (`--engine-features`).
///
/// A store another writer holds locked beyond the wait ([`WAIT_VAR`]) keeps the run in a pending
/// file beside it ([`pending_dir`]), said on one line naming the holder; every later `record`
/// that finds the store free appends the pending runs first, in the order they were kept.
pub fn record(store: &Path, task: &str, results: &ExperimentResults, features: &[String]) {
    let appended = Store::open(store).and_then(|mut s| {
        s.append_pending();
        s.append(task, results, features)
    });
    let Err(e) = appended else { return };
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    let locked = e.chain().any(|c| {
        c.downcast_ref::<Locked>().is_some() || c.downcast_ref::<rusqlite::Error>().is_some_and(is_busy)
    });
    if !locked {
        eprintln!("warning: this run is not in the results store: {}", chain.join(": "));
        return;
    }
    match keep_pending(store, task, results, features) {
        Ok(file) => eprintln!(
            "warning: the results store {} is locked by another writer ({}): this run is kept in {} and enters the \
             store at the next run that finds it free",
            store.display(),
            holders(store),
            file.display()
        ),
        Err(kept) => eprintln!(
            "warning: this run is not in the results store ({}), nor could it be kept: {kept:#}",
            chain.join(": ")
        ),
    }
}

/// The environment variable that sets how long a task waits for a locked store, in seconds
/// (default 30), saying every 5 s that it waits.
pub const WAIT_VAR: &str = "SMALLMIND_STORE_WAIT";

/// The store at `path` is locked by another writer beyond the wait.
#[derive(Debug)]
pub struct Locked {
    pub path: PathBuf,
    /// Who holds it, as [`holders`] says.
    pub holders: String,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the results store is locked by another writer ({}) beyond the wait ({WAIT_VAR} seconds, default \
             30): run again when it is done, or give another --store",
            self.path.display(),
            self.holders
        )
    }
}

impl std::error::Error for Locked {}

/// Whether SQLite said the database is busy or locked.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// SQLite's busy handler: waits 100 ms per call, says so every 5 s, and gives up after the
/// wait [`WAIT_VAR`] sets.
fn wait_for_the_lock(calls: i32) -> bool {
    let wait_s: f64 = std::env::var(WAIT_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(30.0);
    let waited_s = f64::from(calls) * 0.1;
    if waited_s >= wait_s {
        return false;
    }
    if calls > 0 && calls % 50 == 0 {
        eprintln!("waiting for the results store: another writer holds it ({waited_s:.0} s of {wait_s:.0})");
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    true
}

/// The processes that have the store (or its journal) open, as `pid N (command)`, from
/// `/proc/*/fd`, or a sentence saying none of this user has it open.
pub fn holders(store: &Path) -> String {
    let target = std::fs::canonicalize(store).unwrap_or_else(|_| store.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let fds = std::fs::read_dir(entry.path().join("fd")).into_iter().flatten().flatten();
        let open = fds.filter_map(|fd| std::fs::read_link(fd.path()).ok()).any(|link| {
            link == target
                || link.to_string_lossy().strip_suffix("-journal").is_some_and(|l| Path::new(l) == target)
        });
        if open {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let command = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            found.push(format!("pid {pid} ({command})"));
        }
    }
    if found.is_empty() { "no other process of this user has it open".to_string() } else { found.join(", ") }
}

/// `STORE.pending/`: runs kept while the store was locked, one JSON file each.
pub fn pending_dir(store: &Path) -> PathBuf {
    store.with_extension("pending")
}

/// One kept run.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    task: String,
    features: Vec<String>,
    results: ExperimentResults,
}

/// Writes one run to a new file of [`pending_dir`]; its path.
fn keep_pending(
    store: &Path,
    task: &str,
    results: &ExperimentResults,
    features: &[String],
) -> Result<PathBuf> {
    let dir = pending_dir(store);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let file = dir.join(format!("{nanos:024}-{}-{task}-{}.json", std::process::id(), results.experiment));
    let pending = Pending { task: task.to_string(), features: features.to_vec(), results: results.clone() };
    crate::paths::write_atomic(&file, &serde_json::to_vec(&pending)?)?;
    Ok(file)
}

impl Store {
    /// Appends the runs kept while the store was locked, oldest first, each removed once it is
    /// in; one that cannot be read or appended stays, said on one line.
    fn append_pending(&mut self) {
        let dir = pending_dir(&self.path);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let appended = std::fs::read(&file)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| Ok(serde_json::from_slice::<Pending>(&bytes)?))
                .and_then(|p| self.append(&p.task, &p.results, &p.features));
            match appended {
                Ok(_) => {
                    let _ = std::fs::remove_file(&file);
                    eprintln!("results store: appended {}, kept while it was locked", file.display());
                }
                Err(e) => eprintln!("warning: {} stays pending: {e:#}", file.display()),
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}

/// A short, stable hash of what identifies the machine and build (the fields
/// `analysis::machine` compares): runs with the same fingerprint belong to one series.
pub fn fingerprint(e: &Environment) -> String {
    let h = &e.hardware;
    let key = format!(
        "{}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{}|{}|{}|{}|{}|{}",
        h.vendor,
        h.family,
        h.model,
        h.stepping,
        h.microcode,
        h.flags.join(" "),
        h.l1d_bytes,
        h.l2_bytes,
        h.l3_bytes,
        h.numa_nodes,
        e.logical_cores,
        e.rustc,
        e.build_profile,
        e.machine_features().join(","),
        e.target_cpu,
        e.simd_level,
    );
    crate::stable_hash(&key)
}

/// The commit and dirty flag of the engine that ran `variant`: a compare run's base or head,
/// else the engine's own build.
fn revision_of(results: &ExperimentResults, variant: &VariantResults) -> (String, bool) {
    match &results.compare {
        Some(c) => {
            let r = if variant.name.starts_with("head") { &c.head } else { &c.base };
            (r.commit.clone(), r.dirty)
        }
        None => (results.environment.git_commit.clone(), results.environment.git_dirty != "false"),
    }
}

fn insert_session(tx: &Transaction, task: &str, r: &ExperimentResults, features: &[String]) -> Result<i64> {
    let env = &r.environment;
    tx.execute(
        "INSERT INTO sessions (task, experiment, started, finished, command, rounds, fingerprint, machine, \
         environment, spec, features) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            task,
            r.experiment,
            r.started,
            r.finished,
            r.command,
            r.rounds as i64,
            fingerprint(env),
            format!("{} ({})", env.cpu_model, env.hardware.summary()),
            serde_json::to_string(env)?,
            serde_json::to_string(&r.spec)?,
            features.join(","),
        ],
    )?;
    let session = tx.last_insert_rowid();
    for point in &r.points {
        for v in &point.variants {
            let (commit, dirty) = revision_of(r, v);
            remember_commit(tx, &commit)?;
            let digest = point.correctness.digests.iter().find(|(n, _)| *n == v.name).map_or("", |(_, d)| d);
            tx.execute(
                "INSERT INTO variants (session_id, point, variant, reference, toggles, workload, commit_hash, \
                 dirty, digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    session,
                    point.point.label,
                    v.name,
                    v.reference,
                    v.optimizations.to_string(),
                    serde_json::to_string(&v.workload)?,
                    commit,
                    dirty,
                    digest,
                ],
            )?;
            insert_processes(tx, tx.last_insert_rowid(), v)?;
        }
    }
    Ok(session)
}

fn insert_processes(tx: &Transaction, variant: i64, v: &VariantResults) -> Result<()> {
    for run in &v.runs {
        let machine = run.machine.as_ref();
        tx.execute(
            "INSERT INTO processes (variant_id, round, position, bandwidth_gb_s, busy, record) VALUES (?1, ?2, \
             ?3, ?4, ?5, ?6)",
            params![
                variant,
                run.round as i64,
                run.position as i64,
                machine.map(|m| (m.probe.start.triad_gb_s + m.probe.end.triad_gb_s) / 2.0),
                machine.is_some_and(|m| !m.contamination.flags.is_empty()),
                serde_json::to_string(run)?,
            ],
        )?;
        let process = tx.last_insert_rowid();
        for metric in Metric::ALL {
            let pass =
                if matches!(metric, Metric::SoftmaxMs | Metric::AttentionMs) { "phase" } else { "timed" };
            if let Some(value) = run.value(metric).filter(|x| x.is_finite()) {
                tx.execute(
                    "INSERT INTO samples (process_id, metric, pass, value) VALUES (?1, ?2, ?3, ?4)",
                    params![process, metric.name(), pass, value],
                )?;
            }
        }
    }
    Ok(())
}

/// Records `commit`'s time and subject from git, once; a commit git does not know (a store
/// fed from another clone) is recorded with time 0 and an empty subject.
fn remember_commit(tx: &Transaction, commit: &str) -> Result<()> {
    let known: bool =
        tx.query_row("SELECT EXISTS(SELECT 1 FROM commits WHERE hash = ?1)", [commit], |r| r.get(0))?;
    if known {
        return Ok(());
    }
    let shown = std::process::Command::new("git")
        .args(["show", "-s", "--format=%ct%x00%s", commit, "--"])
        .current_dir(crate::project_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let (time, subject) = shown
        .as_deref()
        .and_then(|s| s.split_once('\0'))
        .map_or((0, String::new()), |(t, s)| (t.parse::<i64>().unwrap_or(0), s.to_string()));
    tx.execute(
        "INSERT INTO commits (hash, time, subject) VALUES (?1, ?2, ?3)",
        params![commit, time, subject],
    )?;
    Ok(())
}
