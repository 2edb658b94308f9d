//! The `smallmind` command line: `generate`, `bench`, `info` and `export`.
//!
//! Every error ends the process with one line on stderr saying what is wrong and what to do;
//! nothing is left half-written. The exit code is the error's [`smallmind::ErrorKind`]: 2 for
//! input the user can fix (a bad flag, a bad, missing or unreadable input file, a bad config;
//! the command line's own refusals are all of this kind), 1 for output that cannot be trusted
//! (the engine disagreeing with itself, a profiler failing, non-finite logits) and for failures
//! that are not the input's fault (an output file that cannot be written).

mod cli;

use smallmind::ErrorKind;
use smallmind::bench::alloc::CountingAlloc;
use std::process::ExitCode;

/// Every allocation is counted (`smallmind bench` reports them); see `bench::alloc` for the cost.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOCATOR: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// Heap-profiling build: dhat records every allocation's call stack when a profile is asked for.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOCATOR: CountingAlloc<dhat::Alloc> = CountingAlloc::new(dhat::Alloc);

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: each cause once (an I/O error's message is also its source's).
            let mut line = String::new();
            for cause in err.chain().map(ToString::to_string) {
                if !line.ends_with(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {line}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The exit code of `err`: its library error's kind, else 2 (the command line's own errors are
/// refusals of its flags, `bail!`ed before anything runs, and clap's).
fn exit_code(err: &anyhow::Error) -> u8 {
    let kind = err.chain().find_map(|e| e.downcast_ref::<smallmind::Error>()).map(smallmind::Error::kind);
    kind.unwrap_or(ErrorKind::Input).exit_code()
}
