//! `cargo xtask`: the project's tasks. This file only dispatches; each task is a module.
//!
//! The harness never measures inside itself: tasks that time the engine build it in release and
//! spawn the `smallmind` binary (the experiment tasks land with the harness issue).

mod ci;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Every task, with one line on what it does.
const TASKS: &[(&str, &str)] =
    &[("ci", "formatting check, clippy with warnings denied, and the whole test suite")];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("help" | "--help" | "-h") => {
            print_tasks();
            ExitCode::SUCCESS
        }
        Some("ci") => ci::run(),
        Some(other) => {
            eprintln!(
                "error: unknown task `{other}`; tasks: {}",
                TASKS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            );
            ExitCode::from(2)
        }
    }
}

fn print_tasks() {
    println!("usage: cargo xtask TASK\n\ntasks:");
    for (name, what) in TASKS {
        println!("  {name:<12} {what}");
    }
}

/// The workspace root: every path a task uses is anchored here.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask/ sits in the workspace root").to_path_buf()
}
