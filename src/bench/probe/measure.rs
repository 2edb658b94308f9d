//! The probe's measurement: the triads and the FMA peak on this core, or what
//! `SMALLMIND_PROBE` puts in their place ([`super::PROBE_ENV`]).

use super::{PROBE_ENV, ProbeReading, ProbeReport, ThreadsReading};
use crate::error::{Error, Result};
use crate::kernels::simd_dispatch;
use std::time::{Duration, Instant};

/// What `SMALLMIND_PROBE` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Override {
    Measure,
    Scale(f64),
    Fixed(ProbeReading),
}

impl Override {
    fn from_env() -> Result<Override> {
        let Ok(value) = std::env::var(PROBE_ENV) else { return Ok(Override::Measure) };
        let bad = || {
            Error::Input(format!(
                "{PROBE_ENV}={value:?}: expected scale=F or fixed=TRIAD_GB_S,LLC_GB_S,FMA_GFLOP_S (test-only)"
            ))
        };
        let positive = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0);
        if let Some(f) = value.strip_prefix("scale=") {
            return positive(f).map(Override::Scale).ok_or_else(bad);
        }
        if let Some(list) = value.strip_prefix("fixed=") {
            let v: Vec<f64> = list.split(',').map(positive).collect::<Option<_>>().ok_or_else(bad)?;
            let [triad_gb_s, llc_triad_gb_s, fma_gflop_s] = v[..] else { return Err(bad()) };
            return Ok(Override::Fixed(ProbeReading {
                triad_gb_s,
                llc_triad_gb_s,
                fma_gflop_s,
                took_ms: 0.0,
                threads: None,
            }));
        }
        Err(bad())
    }
}

/// The largest array of the memory triad, bytes. A 2-core Intel Xeon VM (family 6 model 207)
/// reports a 300 MiB L3: uncapped, its arrays were 1.2 GB each and a reading took 2.3-7.5 s,
/// twice in every bench process.
pub const MAX_TRIAD_ARRAY_BYTES: usize = 512 << 20;

/// The probe of one run: how it reads (measured, scaled or fixed), the cache it sizes its
/// buffers from and the run's thread count.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    how: Override,
    llc_bytes: usize,
    threads: usize,
}

impl Probe {
    /// A probe sized from the last-level cache (`llc_bytes`; 32 MiB when unknown), for a run on
    /// `threads` threads (above one, the triads are read on that many threads too).
    ///
    /// # Errors
    /// [`Error::Input`] when `SMALLMIND_PROBE` is set to something else than its two forms.
    pub fn new(llc_bytes: Option<u64>, threads: usize) -> Result<Probe> {
        let how = Override::from_env()?;
        let llc_bytes = llc_bytes.filter(|&b| b >= 1 << 20).unwrap_or(32 << 20) as usize;
        Ok(Probe { how, llc_bytes, threads: threads.max(1) })
    }

    /// Bytes of each array of the memory triad: 4x the last-level cache, at most
    /// [`MAX_TRIAD_ARRAY_BYTES`] (512 MiB), so that the three arrays stay at least 5x any L3
    /// up to 300 MiB without a reading taking seconds where the VM reports such an L3.
    pub fn triad_array_bytes(&self) -> usize {
        (4 * self.llc_bytes).min(MAX_TRIAD_ARRAY_BYTES)
    }

    /// Bytes of each array of the LLC triad: the three fit in half the last-level cache.
    pub fn llc_array_bytes(&self) -> usize {
        self.llc_bytes / 6
    }

    /// One reading, ~0.3 s with a 32 MiB L3 (more where the arrays are larger, and more again
    /// when the triads are read on several threads too). Its buffers (3x the memory triad's
    /// array: ~400 MB with a 32 MiB L3, 1.5 GiB at most) are allocated here and freed before
    /// it returns, so that no measured op runs beside them and no peak-heap figure counts them.
    pub fn read(&self) -> ProbeReading {
        let start = Instant::now();
        let mut reading = match self.how {
            Override::Fixed(r) => return r,
            _ => {
                let memory =
                    best_triads(self.triad_array_bytes(), Duration::from_millis(60), 3, self.threads);
                let llc = best_triads(self.llc_array_bytes(), Duration::from_millis(30), 5, self.threads);
                ProbeReading {
                    triad_gb_s: memory.0,
                    llc_triad_gb_s: llc.0,
                    fma_gflop_s: fma_peak(Duration::from_millis(30)),
                    took_ms: 0.0,
                    threads: memory.1.zip(llc.1).map(|(triad_gb_s, llc_triad_gb_s)| ThreadsReading {
                        threads: self.threads,
                        triad_gb_s,
                        llc_triad_gb_s,
                    }),
                }
            }
        };
        if let Override::Scale(f) = self.how {
            reading.triad_gb_s *= f;
            reading.llc_triad_gb_s *= f;
            reading.fma_gflop_s *= f;
            if let Some(t) = &mut reading.threads {
                t.triad_gb_s *= f;
                t.llc_triad_gb_s *= f;
            }
        }
        reading.took_ms = start.elapsed().as_secs_f64() * 1e3;
        reading
    }

    /// The report of a run that read `start` and `end`.
    pub fn report(&self, start: ProbeReading, end: ProbeReading) -> ProbeReport {
        let source = match (self.how, std::env::var(PROBE_ENV)) {
            (Override::Measure, _) | (_, Err(_)) => "measured".into(),
            (_, Ok(v)) => format!("{PROBE_ENV}={v} (test-only: not the machine's readings)"),
        };
        let fixed = matches!(self.how, Override::Fixed(_));
        ProbeReport {
            start,
            end,
            source,
            triad_array_bytes: if fixed { 0 } else { self.triad_array_bytes() },
            llc_array_bytes: if fixed { 0 } else { self.llc_array_bytes() },
        }
    }
}

/// The best triad bandwidth, GB/s, over three arrays of `array_bytes` each, with passes until
/// `budget` has passed (at least `min_passes`): on one thread, and (when `threads` > 1) on
/// `threads` threads at once over the same arrays.
fn best_triads(
    array_bytes: usize,
    budget: Duration,
    min_passes: usize,
    threads: usize,
) -> (f64, Option<f64>) {
    let n = array_bytes / size_of::<f32>();
    // Written once here, which also faults every page in before the timed passes.
    let (mut a, b, c) = (vec![1.0f32; n], vec![2.0f32; n], vec![0.5f32; n]);
    let bytes = (3 * n * size_of::<f32>()) as f64;
    let one = best_of(budget, min_passes, &mut || {
        let t = Instant::now();
        triad(&mut a, &b, &c, 3.0);
        t.elapsed()
    });
    let several =
        (threads > 1).then(|| best_of(budget, min_passes, &mut || triad_split(&mut a, &b, &c, threads)));
    std::hint::black_box(&mut a);
    (bytes / one / 1e9, several.map(|t| bytes / t / 1e9))
}

/// The shortest of `pass`'s times, s, over passes until `budget` has passed (at least
/// `min_passes`).
fn best_of(budget: Duration, min_passes: usize, pass: &mut dyn FnMut() -> Duration) -> f64 {
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut passes = 0;
    while passes < min_passes || start.elapsed() < budget {
        best = best.min(pass().as_secs_f64());
        passes += 1;
    }
    best
}

/// One triad over the arrays split into `threads` contiguous shares, one per thread (this one
/// and `threads - 1` scoped ones): the time from the moment all of them are ready to the end
/// of the last.
fn triad_split(a: &mut [f32], b: &[f32], c: &[f32], threads: usize) -> Duration {
    let share = a.len().div_ceil(threads).max(1);
    let ready = std::sync::Barrier::new(threads);
    let started = std::sync::OnceLock::new();
    let run = |(a, (b, c)): (&mut [f32], (&[f32], &[f32]))| {
        ready.wait();
        started.get_or_init(Instant::now);
        triad(a, b, c, 3.0);
        Instant::now()
    };
    let run = &run;
    let mut shares = a.chunks_mut(share).zip(b.chunks(share).zip(c.chunks(share)));
    let mine = shares.next().expect("a non-empty array");
    std::thread::scope(|s| {
        let others: Vec<_> = shares.map(|share| s.spawn(move || run(share))).collect();
        // Fewer shares than threads (a tiny array) would leave the barrier short of one.
        assert_eq!(others.len() + 1, threads, "triad_split: one share per thread");
        let end = others.into_iter().map(|h| h.join().expect("a triad thread")).fold(run(mine), Instant::max);
        end.duration_since(*started.get().expect("set by the first thread past the barrier"))
    })
}

simd_dispatch!(fn triad(a: &mut [f32], b: &[f32], c: &[f32], s: f32) => triad_body);

#[inline(always)]
fn triad_body(a: &mut [f32], b: &[f32], c: &[f32], s: f32) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + s * c;
    }
}

/// Accumulators of the FMA probe: enough independent chains to hide FMA latency (4-5 cycles)
/// on two FMA pipes.
const FMA_CHAINS: usize = 12;
/// Lanes per chain: one AVX-512 vector (two AVX2 vectors, four SSE ones).
const FMA_LANES: usize = 16;

/// One core's f32 FMA throughput, GFLOP/s: the best of repeated runs within `budget`.
fn fma_peak(budget: Duration) -> f64 {
    let mut acc = [[1.0f32; FMA_LANES]; FMA_CHAINS];
    // Calibrate: grow the iteration count until one run takes >= 2 ms.
    let mut iterations = 1usize << 12;
    loop {
        let t = Instant::now();
        fma_chains(&mut acc, iterations);
        if t.elapsed() >= Duration::from_millis(2) || iterations >= 1 << 30 {
            break;
        }
        iterations *= 2;
    }
    let start = Instant::now();
    let mut best = f64::INFINITY;
    while start.elapsed() < budget || best.is_infinite() {
        let t = Instant::now();
        fma_chains(&mut acc, iterations);
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&acc);
    (2 * FMA_LANES * FMA_CHAINS * iterations) as f64 / best / 1e9
}

/// `acc = acc * m + a`, `iterations` times, as fused multiply-adds of the widest vectors the
/// kernels run (`kernels::simd`): written with intrinsics, because a peak measured through the
/// autovectoriser is a measurement of the autovectoriser. Values stay finite (m < 1 pulls toward a / (1 - m)).
fn fma_chains(acc: &mut [[f32; FMA_LANES]; FMA_CHAINS], iterations: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernels::{SimdLevel, simd};
        if simd() == SimdLevel::Avx512 {
            // Safety: the CPU has AVX-512F (`simd` is never above what it has).
            return unsafe { fma_avx512(acc, iterations) };
        }
        if simd() == SimdLevel::Avx2 {
            // Safety: the CPU has AVX2 and FMA (as above).
            return unsafe { fma_avx2(acc, iterations) };
        }
    }
    fma_portable(acc, iterations);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(acc: &mut [[f32; FMA_LANES]; FMA_CHAINS], iterations: usize) {
    use std::arch::x86_64::*;
    let (m, a) = (_mm512_set1_ps(std::hint::black_box(0.999)), _mm512_set1_ps(std::hint::black_box(0.001)));
    // Safety: each chain is 16 f32, one unaligned 512-bit load and store.
    let mut v: [__m512; FMA_CHAINS] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(acc[i].as_ptr()) });
    for _ in 0..iterations {
        for x in v.iter_mut() {
            *x = _mm512_fmadd_ps(*x, m, a);
        }
    }
    for (chain, x) in acc.iter_mut().zip(v) {
        // Safety: as the load above.
        unsafe { _mm512_storeu_ps(chain.as_mut_ptr(), x) };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(acc: &mut [[f32; FMA_LANES]; FMA_CHAINS], iterations: usize) {
    use std::arch::x86_64::*;
    let (m, a) = (_mm256_set1_ps(std::hint::black_box(0.999)), _mm256_set1_ps(std::hint::black_box(0.001)));
    // Safety: each chain is 16 f32, two unaligned 256-bit loads and stores.
    let mut v: [[__m256; 2]; FMA_CHAINS] = std::array::from_fn(|i| unsafe {
        [_mm256_loadu_ps(acc[i].as_ptr()), _mm256_loadu_ps(acc[i].as_ptr().add(8))]
    });
    for _ in 0..iterations {
        for x in v.iter_mut().flatten() {
            *x = _mm256_fmadd_ps(*x, m, a);
        }
    }
    for (chain, [lo, hi]) in acc.iter_mut().zip(v) {
        // Safety: as the loads above.
        unsafe {
            _mm256_storeu_ps(chain.as_mut_ptr(), lo);
            _mm256_storeu_ps(chain.as_mut_ptr().add(8), hi);
        }
    }
}

/// The portable body: multiply then add (a fused `mul_add` without FMA hardware is a libm call).
fn fma_portable(acc: &mut [[f32; FMA_LANES]; FMA_CHAINS], iterations: usize) {
    let (m, a) = (std::hint::black_box(0.999_f32), std::hint::black_box(0.001_f32));
    let mut local = *acc;
    for _ in 0..iterations {
        for lane in local.iter_mut().flatten() {
            *lane = *lane * m + a;
        }
    }
    *acc = local;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_compute_what_they_say() {
        let (mut a, b, c) = (vec![0.0; 5], vec![1.0, 2.0, 3.0, 4.0, 5.0], vec![1.0; 5]);
        triad(&mut a, &b, &c, 3.0);
        assert_eq!(a, [4.0, 5.0, 6.0, 7.0, 8.0]);
        let mut a = vec![0.0; 5];
        triad_split(&mut a, &b, &c, 2);
        assert_eq!(a, [4.0, 5.0, 6.0, 7.0, 8.0], "split across two threads");
        let want = ((1.0f32 * 0.999 + 0.001) * 0.999 + 0.001) * 0.999 + 0.001;
        let mut acc = [[1.0f32; FMA_LANES]; FMA_CHAINS];
        fma_chains(&mut acc, 3);
        assert!(acc.iter().flatten().all(|&v| (v - want).abs() < 1e-6));
        let mut acc = [[1.0f32; FMA_LANES]; FMA_CHAINS];
        fma_portable(&mut acc, 3);
        assert!(acc.iter().flatten().all(|&v| (v - want).abs() < 1e-6));
    }

    #[test]
    fn the_memory_triad_is_four_times_the_l3_up_to_its_cap() {
        let probe =
            |llc_mib: u64| Probe { how: Override::Measure, llc_bytes: (llc_mib << 20) as usize, threads: 1 };
        assert_eq!(probe(32).triad_array_bytes(), 128 << 20);
        assert_eq!(probe(128).triad_array_bytes(), 512 << 20);
        assert_eq!(probe(300).triad_array_bytes(), MAX_TRIAD_ARRAY_BYTES, "capped");
        assert_eq!(probe(300).llc_array_bytes(), 50 << 20, "the LLC triad is not capped");
    }
}
