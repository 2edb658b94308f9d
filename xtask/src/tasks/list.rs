//! `cargo xtask list`: every experiment with the question it answers.

use crate::error::PathContext;
use crate::paths::Paths;
use crate::plan::Experiment;
use anyhow::Result;

/// Every experiment file: name and description, or the error that keeps it from parsing.
pub fn experiments(paths: &Paths) -> Result<Vec<(String, Result<String>)>> {
    let mut names: Vec<String> = std::fs::read_dir(&paths.experiments)
        .at(&paths.experiments)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(str::to_string))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|n| {
            let description = Experiment::load(&paths.experiment(&n)).map(|e| e.description);
            (n, description)
        })
        .collect())
}

/// Prints the list; exit 0.
pub fn run(paths: &Paths) -> Result<u8> {
    for (name, description) in experiments(paths)? {
        match description {
            Ok(d) => println!("{name:<16} {d}"),
            Err(e) => println!("{name:<16} (invalid: {e})"),
        }
    }
    Ok(0)
}
