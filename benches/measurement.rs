//! What measuring costs: the counting allocator per call, and an engine span with no
//! subscriber (the measured iterations) and with the phase timer on (the phase pass).
//! Run with `cargo bench --bench measurement`; ARCHITECTURE.md quotes the figures.

use criterion::{Criterion, criterion_group, criterion_main};
use smallmind::bench::alloc::CountingAlloc;
use smallmind::bench::phases::{self, PhaseTimer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

fn allocator(c: &mut Criterion) {
    let counting = CountingAlloc::new(System);
    let layout = Layout::from_size_align(256, 16).unwrap();
    let mut group = c.benchmark_group("alloc_dealloc_256B");
    group.bench_function("system", |b| {
        b.iter(|| {
            // Safety: a non-zero layout; the pointer is freed with the same layout.
            unsafe {
                let p = System.alloc(black_box(layout));
                System.dealloc(black_box(p), layout);
            }
        })
    });
    group.bench_function("counting", |b| {
        b.iter(|| {
            // Safety: as above.
            unsafe {
                let p = counting.alloc(black_box(layout));
                counting.dealloc(black_box(p), layout);
            }
        })
    });
    group.finish();
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_span");
    // One span entered and left with no subscriber: what every span costs a measured iteration.
    group.bench_function("disabled_span", |b| {
        b.iter(|| {
            let _span = tracing::trace_span!("softmax").entered();
            black_box(0u32)
        })
    });
    // The engine's own spans, through 8 tokens of the smallest preset (~40 spans per token).
    let model = smallmind::models::presets::find("smallmind-bench").unwrap().model();
    let mut session = smallmind::Session::new(&model, smallmind::Optimizations::all(), 1).unwrap();
    let params = smallmind::GenerateParams {
        max_new_tokens: 8,
        sampling: smallmind::SamplingParams::greedy(),
        stop_tokens: Vec::new(),
    };
    let prompt = smallmind::generate::synthetic_prompt(8, 50, 1);
    let mut step = || session.generate(black_box(&prompt), &params, &mut |_, _| {}).unwrap();
    group.bench_function("no_subscriber_8_tokens", |b| b.iter(&mut step));
    phases::install().unwrap();
    group.bench_function("subscriber_off_8_tokens", |b| b.iter(&mut step));
    let timer = PhaseTimer::start();
    group.bench_function("phase_timer_8_tokens", |b| b.iter(&mut step));
    let _ = timer.finish();
    group.finish();
}

criterion_group!(benches, allocator, spans);
criterion_main!(benches);
