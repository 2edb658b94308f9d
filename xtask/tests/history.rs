//! The results store and `cargo xtask history`: appending and reading back, the schema version,
//! a crash in the middle of a write, machines never mixed in one series; and a backfill over
//! three commits made for the test (`HEAD`'s engine, the same with the test-only
//! `slow-fused-softmax` feature on, and `HEAD`'s again), where the change points are found
//! between the right commits.

mod common;

use common::{commit_tree, git, tree_with};
use std::process::Command;
use xtask::analysis::history::{self, Inputs, Subject};
use xtask::metrics::Metric;
use xtask::store::query::Filter;
use xtask::store::{Store, schema_version};

fn smoke() -> xtask::results::ExperimentResults {
    xtask::results::read(&xtask::project_root().join("reports/smoke/results.json")).unwrap()
}

fn sessions(path: &std::path::Path) -> usize {
    Store::open(path).unwrap().sessions(None).unwrap().len()
}

#[test]
fn the_store_reads_back_what_it_appended_and_keeps_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/store.sqlite");
    let results = smoke();
    let mut store = Store::open(&path).unwrap();
    let id = store.append("experiment", &results, &[]).unwrap();
    let rows = store.samples(&Filter { session: Some(id), ..Filter::default() }).unwrap();
    let processes: usize = results.points.iter().flat_map(|p| &p.variants).map(|v| v.runs.len()).sum();
    let decode: Vec<f64> = rows.iter().filter(|r| r.metric == "decode_tok_s").map(|r| r.value).collect();
    assert_eq!(decode.len(), processes);
    let expected: Vec<f64> =
        results.points[0].variants.iter().flat_map(|v| v.values(Metric::DecodeTokS)).collect();
    assert_eq!(decode, expected);
    assert!(rows.iter().all(|r| r.commit == results.environment.git_commit && r.experiment == "smoke"));
    let listed = store.sessions(Some("smoke")).unwrap();
    assert_eq!(
        (listed.len(), listed[0].task.as_str(), listed[0].processes),
        (1, "experiment", processes as i64)
    );
    drop(store);

    // The schema version is SQLite's user_version; a newer store and a file that is not one are
    // refused (usage errors), and the refused files are left as they were.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, schema_version() as i64);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert_eq!(xtask::error::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("schema 99"), "{err:#}");
    // Another program's SQLite database is not taken over.
    let foreign = dir.path().join("foreign.sqlite");
    rusqlite::Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE notes (text TEXT);").unwrap();
    let err = Store::open(&foreign).unwrap_err();
    assert_eq!(xtask::error::exit_code(&err), 2, "{err:#}");
    assert!(format!("{err:#}").contains("not a results store"), "{err:#}");
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1, "the foreign database is left as it was");
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, "not a database, but a file someone cares about").unwrap();
    let err = Store::open(&garbage).unwrap_err();
    assert_eq!(xtask::error::exit_code(&err), 2, "{err:#}");
    assert_eq!(std::fs::read_to_string(&garbage).unwrap(), "not a database, but a file someone cares about");
}

/// A crash in the middle of an append: the store file and its journal as they are on disk
/// mid-transaction, copied elsewhere, open as the store before the append.
#[test]
fn an_interrupted_append_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let results = smoke();
    Store::open(&path).unwrap().append("experiment", &results, &[]).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // A one-page cache makes SQLite write changed pages to the file before the commit, with the
    // originals in its rollback journal: what a crash leaves behind.
    conn.execute_batch("PRAGMA cache_size = 1; BEGIN;").unwrap();
    for i in 0..2000 {
        conn.execute(
            "INSERT INTO samples (process_id, metric, pass, value) VALUES (1, 'decode_tok_s', 'timed', ?1)",
            [f64::from(i)],
        )
        .unwrap();
    }
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    for name in ["store.sqlite", "store.sqlite-journal"] {
        std::fs::copy(dir.path().join(name), crashed.join(name)).unwrap();
    }
    drop(conn);
    let copy = crashed.join("store.sqlite");
    let store = Store::open(&copy).unwrap();
    assert_eq!(store.sessions(None).unwrap().len(), 1);
    let samples = store.samples(&Filter::default()).unwrap().len();
    drop(store);
    let check = rusqlite::Connection::open(&copy).unwrap();
    let ok: String = check.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    assert_eq!(samples, Store::open(&path).unwrap().samples(&Filter::default()).unwrap().len());
    assert_eq!(sessions(&path), 1);
}

#[test]
fn a_series_never_mixes_two_machines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let mut here = smoke();
    let mut elsewhere = smoke();
    elsewhere.environment.hardware.family = Some(23);
    for v in elsewhere.points[0].variants.iter_mut() {
        for run in &mut v.runs {
            for it in &mut run.iterations {
                it.decode_tok_s = it.decode_tok_s.map(|x| x / 3.0);
            }
        }
    }
    here.environment.git_dirty = "false".into();
    elsewhere.environment.git_dirty = "false".into();
    let mut dirty = here.clone();
    dirty.environment.git_dirty = "true".into();
    let slowed = here.clone();
    let mut store = Store::open(&path).unwrap();
    store.append("experiment", &elsewhere, &[]).unwrap();
    store.append("experiment", &dirty, &[]).unwrap();
    store.append("check", &slowed, &["test-slow-decode".to_string()]).unwrap();
    store.append("experiment", &here, &[]).unwrap();
    let rows = store.samples(&Filter { metric: Some("decode_tok_s".into()), ..Filter::default() }).unwrap();
    let plan = xtask::plan::Plan::new("smoke", here.spec.clone());
    let subjects: Vec<Subject> = plan.points[0].variants.iter().map(Subject::of).collect();
    let order = vec![here.environment.git_commit.clone()];
    let inputs = Inputs {
        experiment: "smoke",
        metric: Metric::DecodeTokS,
        rows: &rows,
        subjects: &subjects,
        order: &order,
        fingerprint: None,
    };
    let h = history::build(inputs, |_, _| None, |_| (0, String::new()));
    assert_eq!(h.fingerprint, xtask::store::fingerprint(&here.environment));
    for s in &h.series {
        let values: Vec<f64> = here.points[0]
            .variants
            .iter()
            .find(|v| v.name == s.subject.variant)
            .unwrap()
            .values(Metric::DecodeTokS);
        assert_eq!(s.commits.len(), 1);
        assert_eq!(s.commits[0].samples, values, "only this machine's samples");
    }
    assert!(
        h.notes.iter().any(|n| n.contains("1 session(s) on 1 other machine(s) left out")),
        "{:?}",
        h.notes
    );
    assert!(
        h.notes.iter().any(|n| n.contains("uncommitted trees in 1 session(s) left out")),
        "{:?}",
        h.notes
    );
    assert!(
        h.notes
            .iter()
            .any(|n| n.starts_with("1 session(s) of engines built with cargo features (test-slow-decode)")),
        "{:?}",
        h.notes
    );
}

#[test]
fn a_backfill_finds_the_slowed_commit() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    std::fs::write(
        root.join("experiments/historytest.toml"),
        include_str!("../test_data/all_off_all_on.toml"),
    )
    .unwrap();
    let head = git(&["rev-parse", "HEAD"], None);
    let same = git(&["rev-parse", "HEAD^{tree}"], None);
    let slowed = tree_with("Cargo.toml", |t| {
        t.replace("default = [\"cli\"]", "default = [\"cli\", \"slow-fused-softmax\"]")
    });
    let c1 = commit_tree(&same, &head, "history test: HEAD's tree");
    let c2 = commit_tree(&slowed, &c1, "history test: the fused softmax slowed");
    let c3 = commit_tree(&same, &c2, "history test: HEAD's tree again");
    let store = root.join("store.sqlite");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "history",
            "historytest",
            "--backfill",
            &format!("{head}..{c3}"),
            "--every-commit",
            "--iterations",
            "5",
        ])
        .arg("--experiments-dir")
        .arg(root.join("experiments"))
        .arg("--reports-dir")
        .arg(root.join("reports"))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let page = std::fs::read_to_string(root.join("reports/historytest/history.md")).unwrap();
    let text = format!("{text}\n{page}");
    let fell = "`all-on`: -";
    let line = stdout.lines().find(|l| l.contains(fell)).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&format!("between {} and {}", &c1[..10], &c2[..10])), "{text}");
    let rose = stdout.lines().find(|l| l.contains("`all-on`: +")).unwrap_or_else(|| panic!("{text}"));
    assert!(rose.contains(&format!("between {} and {}", &c2[..10], &c3[..10])), "{text}");
    assert!(page.contains(&format!("Confirm: `cargo xtask compare {} {}", &c1[..10], &c2[..10])), "{page}");
    assert!(root.join("reports/historytest/history-decode_tok_s-all-on.svg").is_file());
    // Three backfill sessions, one per commit, each recorded under its own commit.
    let listed = Store::open(&store).unwrap().sessions(Some("historytest")).unwrap();
    let commits: Vec<&str> = listed.iter().map(|s| s.commits[0].as_str()).collect();
    assert_eq!(commits, [&c1[..10], &c2[..10], &c3[..10]], "{text}");
    assert!(listed.iter().all(|s| s.task == "backfill"));
}

/// A store another writer holds locked once made `store list` exit 2 with "not a results store
/// (database is locked)" after 30 s, and an experiment drop its session. Now the lock is named
/// with its holder, and a run that cannot wait for it is kept beside the store and enters it at
/// the next run that finds it free: no session is lost.
#[test]
fn a_locked_store_is_named_and_a_run_kept_until_it_is_free() {
    // Safety: this test binary's other tests set no environment variable, and the variable
    // only shortens how long a locked store is waited for.
    unsafe { std::env::set_var(xtask::store::WAIT_VAR, "1") };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    drop(Store::open(&path).unwrap());
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let err = Store::open_existing(&path).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("the results store is locked by another writer"), "{message}");
    assert!(!message.contains("not a results store"), "{message}");

    xtask::store::record(&path, "experiment", &smoke(), &[]);
    let pending = xtask::store::pending_dir(&path);
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 1, "the run is kept");

    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    xtask::store::record(&path, "check", &smoke(), &[]);
    let tasks: Vec<String> =
        Store::open(&path).unwrap().sessions(None).unwrap().into_iter().map(|s| s.task).collect();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert!(tasks.contains(&"experiment".to_string()) && tasks.contains(&"check".to_string()), "{tasks:?}");
    assert!(!pending.exists(), "nothing left pending");
}
