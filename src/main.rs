//! The `smallmind` command line: `generate`, `info` and `export`.
//!
//! Every error caused by the user's input ends the process with exit code 2 and one line on
//! stderr saying what is wrong and what to do; nothing is left half-written.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}
