//! The profile passes after the measurements, each in a pass of its own: dhat's heap profile
//! (the `dhat-heap` feature), pprof's CPU profile (flame graph SVG and protobuf) and the chrome
//! trace of the engine's spans ([`super::phases::Trace`]). These adapters are the only code that
//! touches the profiler crates; the `profilers` feature brings them in.

use super::phases::{self, Trace};
use super::results::{CpuProfile, HeapProfile, Profiles, TraceProfile};
use super::spec::{BenchSpec, Dest, ProfileOutputs, ProfileSettings};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Runs the profile passes `outputs` asks for, in order: heap, CPU, trace (last: it leaves a
/// subscriber installed). `op(what)` runs one operation and checks its output, naming the
/// pass as `what` when it differs.
pub(super) fn profile_passes(
    outputs: &mut ProfileOutputs<'_>,
    spec: &BenchSpec,
    op: &mut dyn FnMut(&str) -> Result<()>,
    progress: &mut dyn FnMut(&str),
) -> Result<Profiles> {
    let mut profiles = Profiles::default();
    if let Some(dest) = outputs.heap.take() {
        progress(&format!("heap profile: {} op(s)", spec.profile.iterations));
        profiles.heap = Some(heap_profile(dest, spec.profile.iterations, &mut || op("heap profile pass"))?);
    }
    if outputs.flamegraph.is_some() || outputs.pprof.is_some() || outputs.folded.is_some() {
        progress(&format!(
            "CPU profile: at least {} op(s) and {} s",
            spec.profile.iterations, spec.profile.cpu_seconds
        ));
        let title = format!(
            "smallmind bench --model {} | {} | {} thread(s)",
            spec.model_name, spec.opts, spec.threads
        );
        profiles.cpu = Some(cpu_profile(
            CpuOutputs {
                flamegraph: outputs.flamegraph.take(),
                pprof: outputs.pprof.take(),
                folded: outputs.folded.take(),
            },
            &spec.profile,
            &title,
            &mut || op("CPU profile pass"),
        )?);
    }
    if let Some(dest) = outputs.trace.take() {
        progress(&format!("chrome trace: {} op(s)", spec.profile.iterations));
        phases::install().map_err(Error::Measurement)?;
        let trace = Trace::start(dest.sink);
        let mut traced = Ok(());
        for _ in 0..spec.profile.iterations {
            traced = op("trace pass");
            if traced.is_err() {
                break;
            }
        }
        trace.finish().map_err(Error::Measurement)?;
        traced?;
        profiles.trace = Some(TraceProfile { path: dest.shown_as, iterations: spec.profile.iterations });
    }
    Ok(profiles)
}

#[cfg(feature = "dhat-heap")]
fn heap_profile(
    dest: Dest<&Path>,
    iterations: usize,
    op: &mut dyn FnMut() -> Result<()>,
) -> Result<HeapProfile> {
    let profiler = dhat::Profiler::builder().file_name(dest.sink).trim_backtraces(Some(32)).build();
    let mut result = Ok(());
    for _ in 0..iterations {
        result = op();
        if result.is_err() {
            break;
        }
    }
    let stats = dhat::HeapStats::get();
    drop(profiler);
    result?;
    Ok(HeapProfile {
        path: dest.shown_as,
        iterations,
        total_blocks: stats.total_blocks,
        total_bytes: stats.total_bytes,
        max_bytes: stats.max_bytes as u64,
    })
}

#[cfg(not(feature = "dhat-heap"))]
fn heap_profile(_: Dest<&Path>, _: usize, _: &mut dyn FnMut() -> Result<()>) -> Result<HeapProfile> {
    Err(Error::Input("--heap-profile needs a build with the dhat-heap feature".into()))
}

/// Where the CPU profile goes: any of the three forms.
struct CpuOutputs<'a> {
    flamegraph: Option<Dest<&'a mut dyn Write>>,
    pprof: Option<Dest<&'a mut dyn Write>>,
    folded: Option<Dest<&'a mut dyn Write>>,
}

fn cpu_profile(
    outputs: CpuOutputs<'_>,
    settings: &ProfileSettings,
    title: &str,
    op: &mut dyn FnMut() -> Result<()>,
) -> Result<CpuProfile> {
    let failed = |what: &str, e: pprof::Error| Error::Measurement(format!("CPU profiler: {what}: {e}"));
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(settings.frequency_hz)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| failed("cannot start", e))?;
    let start = Instant::now();
    let mut iterations = 0;
    while iterations < settings.iterations || start.elapsed().as_secs_f64() < settings.cpu_seconds {
        op()?;
        iterations += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = guard.report().build().map_err(|e| failed("cannot build the report", e))?;
    drop(guard);
    let samples = report.data.values().map(|&n| n.max(0) as u64).sum();
    let io = |e: std::io::Error| Error::Measurement(format!("cannot write the CPU profile: {e}"));
    let mut profile = CpuProfile {
        flamegraph_path: None,
        pprof_path: None,
        folded_path: None,
        iterations,
        seconds,
        frequency_hz: settings.frequency_hz,
        samples,
    };
    if let Some(dest) = outputs.folded {
        dest.sink.write_all(folded(&report).as_bytes()).map_err(io)?;
        profile.folded_path = Some(dest.shown_as);
    }
    if let Some(dest) = outputs.flamegraph {
        let mut options = pprof::flamegraph::Options::default();
        options.title = title.to_string();
        options.subtitle =
            Some(format!("{samples} samples at {} Hz over {seconds:.1} s", settings.frequency_hz));
        let mut svg = Vec::new();
        report.flamegraph_with_options(&mut svg, &mut options).map_err(|e| failed("flame graph", e))?;
        dest.sink.write_all(&svg).map_err(io)?;
        profile.flamegraph_path = Some(dest.shown_as);
    }
    if let Some(dest) = outputs.pprof {
        use pprof::protos::Message;
        let encoded = report.pprof().map_err(|e| failed("pprof", e))?.encode_to_vec();
        dest.sink.write_all(&encoded).map_err(io)?;
        profile.pprof_path = Some(dest.shown_as);
    }
    Ok(profile)
}

/// The report's stacks collapsed, root first, one `thread;root;...;leaf COUNT` line per stack
/// (the lines pprof-rs hands inferno for its flame graph), sorted so that the file is stable.
fn folded(report: &pprof::Report) -> String {
    let mut lines: Vec<String> = report
        .data
        .iter()
        .filter(|&(_, &count)| count > 0)
        .map(|(stack, count)| {
            let mut names = vec![stack.thread_name_or_id()];
            for frame in stack.frames.iter().rev() {
                names.extend(frame.iter().rev().map(ToString::to_string));
            }
            format!("{} {count}", names.join(";"))
        })
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}
