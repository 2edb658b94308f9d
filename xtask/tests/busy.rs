//! A round in which another process takes CPU time from a run is measured again, whole: two
//! spinning shell loops run beside a two-variant experiment on this machine's cores, every round
//! is flagged, measured a second time (and that attempt kept), and the report says so. In a
//! test binary of its own: the loops would slow any test running beside them.

use std::process::{Child, Command};

/// Kills the loops however the test ends.
struct Spinners(Vec<Child>);

impl Drop for Spinners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_round_another_process_competed_in_is_measured_again() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::create_dir_all(root.join("experiments")).unwrap();
    // Measured ops long enough (about a second a process beside the loops) that the loops' CPU
    // time stands out.
    let experiment = include_str!("../test_data/two_variants.toml")
        .replace("max_new_tokens = 16", "max_new_tokens = 128")
        .replace(
            "iterations = 2\nquick_iterations = 2",
            "iterations = 2\nquick_iterations = 2\nops_per_run = 2",
        );
    std::fs::write(root.join("experiments/busy.toml"), experiment).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners = Spinners(
        (0..cores)
            .map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("sh runs"))
            .collect(),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["experiment", "busy", "--no-profiles"])
        .arg("--experiments-dir")
        .arg(root.join("experiments"))
        .arg("--reports-dir")
        .arg(root.join("reports"))
        .arg("--baselines-dir")
        .arg(root.join("baselines"))
        .arg("--store")
        .arg(root.join("store.sqlite"))
        .output()
        .unwrap();
    drop(spinners);
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let said: Vec<&str> = text.lines().filter(|l| l.contains("measuring the round again")).collect();
    assert_eq!(said.len(), 2, "{text}");
    assert!(said[0].contains("round 1: ") && said[0].contains("other processes used"), "{text}");
    let results = xtask::results::read(&root.join("reports/busy/results.json")).unwrap();
    assert_eq!(results.points[0].rerun, [0, 1], "{text}");
    for v in &results.points[0].variants {
        let rounds: Vec<usize> = v.runs.iter().map(|r| r.round).collect();
        assert_eq!(rounds, [0, 1], "one kept attempt per round");
    }
    let page = std::fs::read_to_string(root.join("reports/busy/README.md")).unwrap();
    assert!(page.contains("| measured again | round 1, round 2: another process"), "{page}");
}
