//! The `smallmind` command line: `generate`, `bench`, `info` and `export`.
//!
//! Every error caused by the user's input ends the process with exit code 2 and one line on
//! stderr saying what is wrong and what to do; nothing is left half-written. A measurement that
//! cannot be trusted (the engine disagreeing with itself, a profiler failing) exits with 1.

mod cli;

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
            let code =
                err.chain().find_map(|e| e.downcast_ref::<smallmind::Error>()).map_or(2, |e| e.exit_code());
            ExitCode::from(code)
        }
    }
}
