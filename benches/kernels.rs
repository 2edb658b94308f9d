//! Kernel benchmarks: our one-row products against `gemm` on decode shapes, and the attention
//! kernels each toggle chooses between. Run with `cargo bench --bench kernels`.
//!
//! "cold" variants cycle through enough distinct weight matrices (> 256 MiB) that every call
//! reads its weights from memory, as decoding the `gpt2` shape does.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use smallmind::kernels::attention::{HeadRows, scores_batched_gemm, scores_per_pair_dot};
use smallmind::kernels::matmul::{matmul_transposed, vec_mat, vec_mat_transposed};
use smallmind::kernels::panel;
use smallmind::kernels::parallel::Threads;
use smallmind::kernels::softmax::{softmax_causal_fused, softmax_full_then_mask};
use std::hint::black_box;

fn data(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0).collect()
}

/// `x (1, k) · w (k, n)` through gemm, for comparison with `vec_mat` and with `panel::matmul`
/// on `w` packed.
fn gemm_row(x: &[f32], w: &[f32], n: usize, out: &mut [f32]) {
    let k = x.len();
    // Safety: x is (1, k), w is (k, n), out is (1, n), all row-major and in bounds.
    unsafe {
        gemm::gemm(
            1,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn one_row_products(c: &mut Criterion) {
    // GPT-2's Conv1D products: "ours" is `vec_mat` on the checkpoint's layout (CPUs without
    // AVX-512), "panels" `panel::matmul` on the packed weights (AVX-512).
    let mut group = c.benchmark_group("vec_mat");
    for (k, n) in [(128, 384), (128, 512), (768, 2304), (768, 3072), (3072, 768)] {
        let x = data(k);
        let w = data(k * n);
        let packed = panel::pack(&w, k, n);
        let mut out = vec![0.0; n];
        group.throughput(Throughput::Elements((k * n) as u64));
        let shape = format!("{k}x{n}");
        group.bench_function(BenchmarkId::new("ours", &shape), |b| {
            b.iter(|| vec_mat(black_box(&x), black_box(&w), n, None, &mut out, Threads::One))
        });
        group.bench_function(BenchmarkId::new("panels", &shape), |b| {
            b.iter(|| panel::matmul(black_box(&x), 1, k, black_box(&packed), n, None, &mut out, Threads::One))
        });
        group.bench_function(BenchmarkId::new("gemm", &shape), |b| {
            b.iter(|| gemm_row(black_box(&x), black_box(&w), n, &mut out))
        });
        let copies = (256 << 20) / (k * n * 4) + 1;
        let ws: Vec<Vec<f32>> = (0..copies).map(|_| data(k * n)).collect();
        let packed: Vec<Vec<f32>> = ws.iter().map(|w| panel::pack(w, k, n)).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("ours-cold", &shape), |b| {
            b.iter(|| {
                i = (i + 1) % copies;
                vec_mat(black_box(&x), &ws[i], n, None, &mut out, Threads::One)
            })
        });
        group.bench_function(BenchmarkId::new("panels-cold", &shape), |b| {
            b.iter(|| {
                i = (i + 1) % copies;
                panel::matmul(black_box(&x), 1, k, &packed[i], n, None, &mut out, Threads::One)
            })
        });
        group.bench_function(BenchmarkId::new("gemm-cold", &shape), |b| {
            b.iter(|| {
                i = (i + 1) % copies;
                gemm_row(black_box(&x), &ws[i], n, &mut out)
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("lm_head");
    for (k, n) in [(128, 256), (768, 50257)] {
        let x = data(k);
        let w = data(k * n);
        let mut out = vec![0.0; n];
        group.throughput(Throughput::Elements((k * n) as u64));
        let shape = format!("{k}x{n}");
        group.bench_function(BenchmarkId::new("ours", &shape), |b| {
            b.iter(|| vec_mat_transposed(black_box(&x), black_box(&w), n, &mut out, Threads::One))
        });
        group.bench_function(BenchmarkId::new("several-rows", &shape), |b| {
            // m = 2 takes matmul_transposed's several-row path: our tiled kernel on AVX-512,
            // gemm elsewhere.
            let x2 = data(2 * k);
            let mut out2 = vec![0.0; 2 * n];
            b.iter(|| matmul_transposed(black_box(&x2), 2, k, black_box(&w), n, &mut out2, Threads::One))
        });
    }
    group.finish();
}

fn attention(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention_scores");
    for n in [32, 128, 512] {
        let (hd, stride) = (32, 128);
        let scale = 1.0 / (hd as f32).sqrt();
        let q_buf = data(n * stride);
        let k_buf = data(n * stride);
        let q = HeadRows { data: &q_buf, row_stride: stride, head_dim: hd };
        let k = HeadRows { data: &k_buf, row_stride: stride, head_dim: hd };
        let mut scores = vec![0.0; n * n];
        group.bench_function(BenchmarkId::new("per-pair-dot", n), |b| {
            b.iter(|| scores_per_pair_dot(q, k, n, 0, scale, &mut scores))
        });
        group.bench_function(BenchmarkId::new("batched-gemm", n), |b| {
            b.iter(|| scores_batched_gemm(q, k, n, 0, scale, &mut scores))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("softmax");
    for n in [32, 128, 512] {
        let mut base = data(n * n);
        for i in 0..n {
            base[i * n + i + 1..(i + 1) * n].fill(f32::NEG_INFINITY);
        }
        let mut scores = base.clone();
        group.bench_function(BenchmarkId::new("full-then-mask", n), |b| {
            b.iter(|| {
                scores.copy_from_slice(&base);
                softmax_full_then_mask(&mut scores, n, n, 0)
            })
        });
        group.bench_function(BenchmarkId::new("fused", n), |b| {
            b.iter(|| {
                scores.copy_from_slice(&base);
                softmax_causal_fused(&mut scores, n, n, 0)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = one_row_products, attention
}
criterion_main!(benches);
