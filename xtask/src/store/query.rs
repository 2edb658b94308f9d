//! Questions asked of the results store: its sessions, and every sample with what identifies it.
//! Rows come back as plain values; `analysis::history` makes series of them and `store::export`
//! writes them out.

use super::Store;
use anyhow::{Context, Result};
use rusqlite::params;

/// One session (a task's run of an experiment), as `store list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: i64,
    pub task: String,
    pub experiment: String,
    /// UTC, RFC 3339.
    pub finished: String,
    pub fingerprint: String,
    pub machine: String,
    /// The engines' commits, short, `+dirty` for uncommitted trees, in first-seen order.
    pub commits: Vec<String>,
    /// Measured processes.
    pub processes: i64,
    /// The cargo features the harness built the engine with (`test-slow-decode`),
    /// comma-separated; empty for the commit's default build.
    pub features: String,
}

/// One metric's value in one measured process, with everything that identifies it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SampleRow {
    pub session: i64,
    pub task: String,
    pub experiment: String,
    pub finished: String,
    pub fingerprint: String,
    /// The machine's summary.
    pub machine: String,
    /// The cargo features the harness built the engine with, comma-separated (empty: the
    /// commit's default build).
    pub features: String,
    pub commit: String,
    pub dirty: bool,
    pub point: String,
    pub variant: String,
    pub reference: bool,
    /// `tensor-pool=on,batched-matmul=off,...`.
    pub toggles: String,
    /// The workload as JSON.
    pub workload: String,
    pub digest: String,
    pub round: i64,
    pub position: i64,
    /// The probe's one-core memory bandwidth during the process (mean of start and end), GB/s.
    pub bandwidth_gb_s: Option<f64>,
    /// Whether the process was flagged as run on a busy machine.
    pub busy: bool,
    pub metric: String,
    /// `timed` (the measured ops) or `phase` (the phase pass).
    pub pass: String,
    pub value: f64,
}

/// Which samples to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub experiment: Option<String>,
    pub session: Option<i64>,
    pub metric: Option<String>,
}

impl Store {
    /// Every session, oldest first, of `experiment` if given.
    pub fn sessions(&self, experiment: Option<&str>) -> Result<Vec<SessionRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT s.id, s.task, s.experiment, s.finished, s.fingerprint, s.machine, \
             (SELECT group_concat(c, ' ') FROM (SELECT DISTINCT substr(v.commit_hash, 1, 10) || \
              CASE WHEN v.dirty THEN '+dirty' ELSE '' END AS c FROM variants v WHERE v.session_id = s.id \
              ORDER BY v.id)), \
             (SELECT count(*) FROM processes p JOIN variants v ON p.variant_id = v.id WHERE v.session_id = s.id), \
             s.features FROM sessions s WHERE (?1 IS NULL OR s.experiment = ?1) ORDER BY s.id",
        )?;
        let rows = stmt.query_map(params![experiment], |r| {
            Ok(SessionRow {
                id: r.get(0)?,
                task: r.get(1)?,
                experiment: r.get(2)?,
                finished: r.get(3)?,
                fingerprint: r.get(4)?,
                machine: r.get(5)?,
                commits: r
                    .get::<_, Option<String>>(6)?
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                processes: r.get(7)?,
                features: r.get(8)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().context("reading the store's sessions")
    }

    /// The session `id`'s experiment, environment and experiment spec as JSON, if it exists.
    pub fn session_json(&self, id: i64) -> Result<Option<(String, String, String)>> {
        let mut stmt =
            self.conn().prepare("SELECT experiment, environment, spec FROM sessions WHERE id = ?1")?;
        let mut rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.next().transpose()?)
    }

    /// Every sample matching `filter`, in session, variant, process order.
    pub fn samples(&self, filter: &Filter) -> Result<Vec<SampleRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT s.id, s.task, s.experiment, s.finished, s.fingerprint, s.machine, s.features, v.commit_hash, v.dirty, v.point, \
             v.variant, v.reference, v.toggles, v.workload, v.digest, p.round, p.position, p.bandwidth_gb_s, \
             p.busy, x.metric, x.pass, x.value \
             FROM samples x JOIN processes p ON x.process_id = p.id JOIN variants v ON p.variant_id = v.id \
             JOIN sessions s ON v.session_id = s.id \
             WHERE (?1 IS NULL OR s.experiment = ?1) AND (?2 IS NULL OR s.id = ?2) AND (?3 IS NULL OR x.metric = ?3) \
             ORDER BY s.id, v.id, p.id, x.rowid",
        )?;
        let rows = stmt.query_map(params![filter.experiment, filter.session, filter.metric], |r| {
            Ok(SampleRow {
                session: r.get(0)?,
                task: r.get(1)?,
                experiment: r.get(2)?,
                finished: r.get(3)?,
                fingerprint: r.get(4)?,
                machine: r.get(5)?,
                features: r.get(6)?,
                commit: r.get(7)?,
                dirty: r.get(8)?,
                point: r.get(9)?,
                variant: r.get(10)?,
                reference: r.get(11)?,
                toggles: r.get(12)?,
                workload: r.get(13)?,
                digest: r.get(14)?,
                round: r.get(15)?,
                position: r.get(16)?,
                bandwidth_gb_s: r.get(17)?,
                busy: r.get(18)?,
                metric: r.get(19)?,
                pass: r.get(20)?,
                value: r.get(21)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().context("reading the store's samples")
    }

    /// Each known commit's time (Unix seconds, 0 when git did not know it) and subject.
    pub fn commit_info(&self, commit: &str) -> Result<Option<(i64, String)>> {
        let mut stmt = self.conn().prepare("SELECT time, subject FROM commits WHERE hash = ?1")?;
        let mut rows = stmt.query_map([commit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.next().transpose()?)
    }
}
