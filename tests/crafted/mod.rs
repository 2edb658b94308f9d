//! The harness of `crafted_files.rs`: crafted variants of a valid input (truncations, field
//! edits, flips), and [`check`], which loads each one and records every broken property (a
//! panic, an error of more than one line, an allocation beyond the bound, a file written).

use smallmind::bench::alloc;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// A refused load may allocate this many times the bytes of its input files...
pub const ALLOC_FACTOR: usize = 4;
/// ...plus this many bytes (error messages, paths, the safetensors header's map).
pub const ALLOC_SLACK: usize = 64 * 1024;

/// The constant for `tokenizer.json`: the `tokenizers` crate allocates about 800 KiB for any
/// byte-pair model it builds, whatever the file's size (its merge cache is made with room for
/// 10,000 words), even when it then refuses the file; only that constant is exempt.
pub const TOKENIZERS_SLACK: usize = 1024 * 1024;

/// Zero, negative, huge (2^40: no machine holds a model this wide) and overflowing (2^64 - 1,
/// 2^64) values for a JSON size field.
pub const JSON_SIZES: [&str; 6] =
    ["0", "-1", "1099511627776", "18446744073709551615", "18446744073709551616", "\"8\""];
/// Zero, negative, overflowing and non-numeric values for a JSON float field.
pub const JSON_FLOATS: [&str; 5] = ["0", "-1", "1e300", "-1e300", "\"x\""];
/// Zero, negative, huge and extreme values for an `i32` header field.
pub const I32_VALUES: [i32; 6] = [0, -1, i32::MIN, i32::MAX, 1 << 30, 1 << 16];

/// What a crafted variant must give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expect {
    /// A typed error.
    Refused,
    /// Either a typed error or a successful load (a flipped byte may leave a valid file).
    Either,
    /// A successful load (the input is valid, written differently).
    Loads,
}

/// One crafted input: a name for the failure message, the bytes, what it must give.
pub struct Variant {
    pub case: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
    /// Text the error must hold, when the case has a right message.
    pub needle: Option<String>,
}

pub fn refused(case: impl Into<String>, bytes: Vec<u8>) -> Variant {
    Variant { case: case.into(), bytes, expect: Expect::Refused, needle: None }
}

/// Loads the input in a directory.
pub type Loader = dyn Fn(&Path) -> smallmind::Result<()>;

/// A loader under test: the files of a valid input, the one that is crafted, how to load it.
pub struct Subject {
    pub name: String,
    pub files: Vec<(&'static str, Vec<u8>)>,
    pub target: &'static str,
    pub load: Box<Loader>,
    /// The constant of this loader's allocation bound: [`ALLOC_SLACK`], or more for the
    /// `tokenizers` crate (see [`TOKENIZERS_SLACK`]).
    pub alloc_slack: usize,
    /// Whether the valid input loads (checked first): not when the loader asks more of it.
    pub valid_input_loads: bool,
}

impl Subject {
    pub fn new(
        name: impl Into<String>,
        files: Vec<(&'static str, Vec<u8>)>,
        target: &'static str,
        load: impl Fn(&Path) -> smallmind::Result<()> + 'static,
    ) -> Subject {
        Subject {
            name: name.into(),
            files,
            target,
            load: Box::new(load),
            alloc_slack: ALLOC_SLACK,
            valid_input_loads: true,
        }
    }

    /// The valid bytes of the crafted file.
    pub fn original(&self) -> &[u8] {
        &self.files.iter().find(|(name, _)| *name == self.target).expect("the target is a file").1
    }
}

/// The largest allocation ratio seen, and the failures found, over all subjects.
#[derive(Default)]
pub struct Report {
    pub failures: Vec<String>,
    pub variants: usize,
    /// The largest peak allocation of a refused load as a fraction of its bound.
    pub worst_of_bound: f64,
}

/// The names and sizes of the files in `dir`.
pub fn listing(dir: &Path) -> BTreeMap<String, u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), e.metadata().unwrap().len())
        })
        .collect()
}

/// A fresh directory, in RAM (`/dev/shm`) where there is one: the variants are thousands of
/// small writes, 3 ms each on a virtual machine's disk, 0.06 ms in RAM.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Loads each variant of `subject` in a fresh directory and records every broken property.
pub fn check(subject: &Subject, variants: Vec<Variant>, report: &mut Report) {
    let dir = scratch_dir();
    for (name, bytes) in &subject.files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    if let Err(e) = (subject.load)(dir.path())
        && subject.valid_input_loads
    {
        report.failures.push(format!("{}: the valid input does not load: {e}", subject.name));
        return;
    }
    let others: usize =
        subject.files.iter().filter(|(n, _)| *n != subject.target).map(|(_, b)| b.len()).sum();
    for variant in variants {
        std::fs::write(dir.path().join(subject.target), &variant.bytes).unwrap();
        let before = listing(dir.path());
        let input_bytes = others + variant.bytes.len();
        let live = alloc::snapshot().live_bytes;
        alloc::reset_peak();
        let outcome = catch_unwind(AssertUnwindSafe(|| (subject.load)(dir.path())));
        let peak = alloc::snapshot().peak_live_bytes.saturating_sub(live) as usize;
        let case = format!("{} / {}", subject.name, variant.case);
        report.variants += 1;
        match outcome {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                report.failures.push(format!("{case}: panicked: {msg}"));
            }
            Ok(Ok(())) if variant.expect == Expect::Refused => {
                report.failures.push(format!("{case}: loaded without an error"));
            }
            Ok(Ok(())) => {}
            Ok(Err(e)) if variant.expect == Expect::Loads => {
                report.failures.push(format!("{case}: refused a valid input: {e}"));
            }
            Ok(Err(e)) => {
                let message = e.to_string();
                if message.trim().is_empty() || message.lines().count() != 1 {
                    report.failures.push(format!("{case}: the error is not one line: {message:?}"));
                }
                if let Some(needle) = &variant.needle
                    && !message.contains(needle.as_str())
                {
                    report.failures.push(format!("{case}: `{needle}` is not in the error: {message}"));
                }
                let bound = ALLOC_FACTOR * input_bytes + subject.alloc_slack;
                report.worst_of_bound = report.worst_of_bound.max(peak as f64 / bound as f64);
                if peak > bound {
                    report.failures.push(format!(
                        "{case}: allocated {peak} bytes at peak for {input_bytes} bytes of input ({message})"
                    ));
                }
            }
        }
        if listing(dir.path()) != before {
            report.failures.push(format!("{case}: the directory changed: {:?}", listing(dir.path())));
        }
    }
}

/// A seeded xorshift64* generator: the same variants on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `bytes` cut at every one of `boundaries` and at `sampled` seeded other offsets (all refused).
pub fn truncations(bytes: &[u8], boundaries: &[usize], sampled: usize, rng: &mut Rng) -> Vec<Variant> {
    let mut cuts: Vec<usize> = boundaries.iter().copied().filter(|&b| b < bytes.len()).collect();
    cuts.extend((0..sampled).map(|_| rng.below(bytes.len())));
    cuts.sort_unstable();
    cuts.dedup();
    cuts.into_iter().map(|at| refused(format!("truncated at byte {at}"), bytes[..at].to_vec())).collect()
}

/// `n` copies of `bytes`, each with one seeded byte xor-ed with a seeded non-zero mask.
pub fn flips(bytes: &[u8], n: usize, rng: &mut Rng) -> Vec<Variant> {
    (0..n)
        .map(|_| {
            let (at, mask) = (rng.below(bytes.len()), 1 + rng.below(255) as u8);
            let mut b = bytes.to_vec();
            b[at] ^= mask;
            Variant {
                case: format!("byte {at} xor {mask:#04x}"),
                bytes: b,
                expect: Expect::Either,
                needle: None,
            }
        })
        .collect()
}

/// `bytes` with the little-endian `i32` at `offset` set to each of `values` (all refused).
pub fn i32_edits(bytes: &[u8], offset: usize, field: &str, values: &[i32]) -> Vec<Variant> {
    values
        .iter()
        .map(|v| {
            let mut b = bytes.to_vec();
            b[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
            refused(format!("{field} = {v}"), b)
        })
        .collect()
}

/// The JSON text `json` with `value` (a key path from the root) replaced by the literal `text`.
pub fn json_with(json: &serde_json::Value, path: &[&str], text: &str) -> String {
    const MARK: &str = "@@crafted@@";
    let mut edited = json.clone();
    let mut at = &mut edited;
    for key in path {
        at = match key.parse::<usize>() {
            Ok(i) if at.is_array() => &mut at[i],
            _ => &mut at[*key],
        };
    }
    *at = serde_json::Value::String(MARK.into());
    serde_json::to_string(&edited).unwrap().replace(&format!("\"{MARK}\""), text)
}

/// `config.json` with each of `keys` (added when absent) set to each of `values` (all refused).
pub fn json_field_edits(bytes: &[u8], keys: &[&str], values: &[&str]) -> Vec<Variant> {
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let mut out = Vec::new();
    for key in keys {
        for value in values {
            out.push(refused(format!("{key} = {value}"), json_with(&json, &[key], value).into_bytes()));
        }
    }
    out
}
