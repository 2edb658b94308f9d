//! `cargo xtask ci`: what a pull request must pass, in the order that fails fastest.

use crate::error::exit;
use std::process::Command;

/// Each step: a description and the cargo arguments.
const STEPS: &[(&str, &[&str])] = &[
    ("formatting", &["fmt", "--all", "--", "--check"]),
    ("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    ("tests", &["test", "--workspace"]),
];

/// Runs every step; stops at the first that fails. Gives the exit code.
pub fn run() -> u8 {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (what, args) in STEPS {
        eprintln!("== {what}: cargo {}", args.join(" "));
        let status = Command::new(&cargo).args(*args).current_dir(crate::project_root()).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("error: {what} failed ({s})");
                return exit::FAILURE;
            }
            Err(e) => {
                eprintln!("error: cannot run cargo: {e}");
                return exit::FAILURE;
            }
        }
    }
    exit::OK
}
