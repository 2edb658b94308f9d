//! Every committed report re-renders byte for byte: `cargo xtask report NAME`, run on a copy of
//! `reports/` and `baselines/`, must give back exactly the committed files (the markdown, the
//! charts, the bisect page and everything beside them). A report is derived from its results
//! file alone, so any byte that changes is a change in how the harness analyses or renders. The
//! committed compare runs (`reports/compare/BASE..HEAD/`) likewise, by `cargo xtask summary
//! --index`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir`, by its path relative to `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (relative, bytes) in files(from) {
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

#[test]
fn every_committed_report_re_renders_byte_for_byte() {
    let repo = xtask::project_root();
    let scratch = tempfile::tempdir().unwrap();
    let (reports, baselines) = (scratch.path().join("reports"), scratch.path().join("baselines"));
    copy_tree(&repo.join("reports"), &reports);
    copy_tree(&repo.join("baselines"), &baselines);
    let mut names: Vec<String> = std::fs::read_dir(repo.join("reports"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("results.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "the committed reports: {names:?}");
    for name in &names {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["report", name])
            .arg("--reports-dir")
            .arg(&reports)
            .arg("--baselines-dir")
            .arg(&baselines)
            .arg("--experiments-dir")
            .arg(repo.join("experiments"))
            .output()
            .unwrap();
        assert!(out.status.success(), "report {name}: {}", String::from_utf8_lossy(&out.stderr));
        let (committed, rendered) = (files(&repo.join("reports").join(name)), files(&reports.join(name)));
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            rendered.keys().collect::<Vec<_>>(),
            "report {name}: the same files"
        );
        for (file, bytes) in &committed {
            assert!(
                &rendered[file] == bytes,
                "report {name}: {} differs from the committed one after re-rendering",
                file.display()
            );
        }
    }
    // Every committed compare run re-renders too (`summary --index`: its pages, charts and index).
    let compares: Vec<PathBuf> = std::fs::read_dir(repo.join("reports/compare"))
        .map(|dir| dir.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    for committed in &compares {
        let copy = reports.join("compare").join(committed.file_name().unwrap());
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["summary", "--index"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "summary --index {}: {}",
            copy.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let (before, after) = (files(committed), files(&copy));
        assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "{}", copy.display());
        for (file, bytes) in &before {
            assert!(
                &after[file] == bytes,
                "{}: {} differs after re-rendering",
                copy.display(),
                file.display()
            );
        }
    }
    // Nothing is left beside the reports: no staging folder, no temporary file.
    let left: Vec<String> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
