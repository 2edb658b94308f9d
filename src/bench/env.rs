//! The environment a measurement ran in: machine, OS, build and provenance. Runs are compared in
//! absolute terms only when these agree (SMALLMIND_FACTS.md: before and after ran on different
//! machines). Linux facts come from `/proc`; elsewhere they read "unknown".

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where and with what a results file was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub cpu_model: String,
    /// What identifies the hardware beyond its model string (absent from files written before
    /// it was recorded, which then read and write back unchanged).
    #[serde(default, skip_serializing_if = "Hardware::is_unknown")]
    pub hardware: Hardware,
    /// Logical CPUs this process may use.
    pub logical_cores: usize,
    pub memory_total_bytes: Option<u64>,
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    /// The kernels' SIMD copy chosen at run time (`avx512`, `avx2+fma`, `baseline`).
    pub simd_level: String,
    pub rustc: String,
    /// Cargo profile directory the binary was built in (`release`, `profiling`, `debug`).
    pub build_profile: String,
    pub opt_level: String,
    pub debug_assertions: bool,
    /// Cargo features of this build (`dhat-heap`).
    pub features: Vec<String>,
    pub target: String,
    /// `-C target-cpu` from RUSTFLAGS, or `generic`.
    pub target_cpu: String,
    /// Target features enabled at compile time for the whole crate.
    pub target_features: String,
    pub rustflags: String,
    pub smallmind_version: String,
    pub git_commit: String,
    /// `true`, `false` or `unknown` (tracked files modified when the binary was built).
    pub git_dirty: String,
    /// UTC, RFC 3339.
    pub timestamp: String,
    /// The exact command line, shell-quoted.
    pub command_line: String,
}

#[cfg(feature = "engine")]
impl Environment {
    /// The environment of this process now (the `engine` feature: it names the kernels' SIMD level).
    pub fn capture() -> Environment {
        let rustflags = env!("SMALLMIND_RUSTFLAGS").to_string();
        let target_cpu = rustflags
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find_map(|w| (w[0] == "-C" && w[1].starts_with("target-cpu=")).then(|| w[1][11..].to_string()))
            .or_else(|| {
                rustflags.split_whitespace().find_map(|f| f.strip_prefix("-Ctarget-cpu=").map(str::to_string))
            })
            .unwrap_or_else(|| "generic".into());
        let args: Vec<String> = std::env::args().collect();
        Environment {
            cpu_model: cpu_model(),
            hardware: Hardware::capture(),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_total_bytes: memory_total_bytes(),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            os: os_name(),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            simd_level: crate::kernels::simd_level(),
            rustc: env!("SMALLMIND_RUSTC_VERSION").into(),
            build_profile: env!("SMALLMIND_BUILD_PROFILE").into(),
            opt_level: env!("SMALLMIND_OPT_LEVEL").into(),
            debug_assertions: cfg!(debug_assertions),
            features: features(),
            target: env!("SMALLMIND_TARGET").into(),
            target_cpu,
            target_features: env!("SMALLMIND_TARGET_FEATURES").into(),
            rustflags,
            smallmind_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: env!("SMALLMIND_GIT_COMMIT").into(),
            git_dirty: env!("SMALLMIND_GIT_DIRTY").into(),
            timestamp: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            command_line: shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" ")),
        }
    }
}

impl Environment {
    /// The build's features but the test-only ones (those change the code under test, not the
    /// machine or the build's cost).
    pub fn machine_features(&self) -> Vec<&str> {
        self.features.iter().map(String::as_str).filter(|f| !TEST_ONLY_FEATURES.contains(f)).collect()
    }

    /// Whether absolute figures from `self` and `other` may be compared: same machine, OS,
    /// compiler and build settings (commit and time may differ; test-only features may too).
    pub fn comparable_with(&self, other: &Environment) -> bool {
        self.cpu_model == other.cpu_model
            && self.logical_cores == other.logical_cores
            && self.hostname == other.hostname
            && self.kernel == other.kernel
            && self.rustc == other.rustc
            && self.build_profile == other.build_profile
            && self.machine_features() == other.machine_features()
            && self.target_cpu == other.target_cpu
            && self.simd_level == other.simd_level
    }
}

/// The hardware's identity: what a model string hides (every machine of one cloud kind reports
/// `AMD EPYC`, while a Zen 1 and a Zen 5 run this engine 3-4x apart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    /// `AuthenticAMD`, `GenuineIntel`, ...
    pub vendor: String,
    /// CPU family, model and stepping as `/proc/cpuinfo` gives them (decimal).
    pub family: Option<u32>,
    pub model: Option<u32>,
    pub stepping: Option<u32>,
    pub microcode: String,
    /// The flags that change what the kernels can do, in [`FLAGS_THAT_MATTER`] order.
    pub flags: Vec<String>,
    /// Per-core L1 data and L2, and the last-level cache, bytes (sysfs cache index files).
    pub l1d_bytes: Option<u64>,
    pub l2_bytes: Option<u64>,
    pub l3_bytes: Option<u64>,
    pub numa_nodes: Option<usize>,
    /// Whether the CPU says it runs under a hypervisor (the `hypervisor` flag).
    pub virtual_machine: bool,
}

/// CPU flags recorded in [`Hardware::flags`]: the SIMD levels the kernels dispatch on and what
/// the `gemm` crate and future kernels can use.
pub const FLAGS_THAT_MATTER: &[&str] = &[
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "asimd",
    "sve",
    "hypervisor",
];

/// Hostnames that name no machine (a VM image's default, a container's): never identity.
pub const GENERIC_HOSTNAMES: &[&str] =
    &["vm", "localhost", "ubuntu", "debian", "runner", "(none)", "unknown"];

impl Hardware {
    /// This machine's hardware, from `/proc/cpuinfo` and sysfs (empty elsewhere).
    pub fn capture() -> Hardware {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self::from_cpuinfo(&cpuinfo, Path::new("/sys/devices/system"))
    }

    /// The hardware described by a `/proc/cpuinfo` text and a sysfs `devices/system` folder.
    pub fn from_cpuinfo(cpuinfo: &str, sys: &Path) -> Hardware {
        // The first processor's block: every core of one socket reports the same.
        let field = |name: &str| {
            cpuinfo.lines().take_while(|l| !l.trim().is_empty()).find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let number = |name: &str| field(name).and_then(|v| v.parse().ok());
        let flags_line = field("flags").or_else(|| field("Features")).unwrap_or_default();
        let flags: Vec<&str> = flags_line.split_whitespace().collect();
        let cache = |level: &str, kind: &str| -> Option<u64> {
            (0..8).find_map(|i| {
                let dir = sys.join(format!("cpu/cpu0/cache/index{i}"));
                let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok().map(|s| s.trim().to_string());
                (read("level")? == level && read("type")? == kind)
                    .then(|| parse_size(&read("size")?))
                    .flatten()
            })
        };
        let numa_nodes = std::fs::read_dir(sys.join("node")).ok().map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.strip_prefix("node")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count()
        });
        Hardware {
            vendor: field("vendor_id")
                .or_else(|| field("CPU implementer"))
                .unwrap_or_else(|| "unknown".into()),
            family: number("cpu family"),
            model: number("model"),
            stepping: number("stepping"),
            microcode: field("microcode").unwrap_or_else(|| "unknown".into()),
            flags: FLAGS_THAT_MATTER.iter().filter(|f| flags.contains(f)).map(|f| f.to_string()).collect(),
            l1d_bytes: cache("1", "Data"),
            l2_bytes: cache("2", "Unified"),
            l3_bytes: cache("3", "Unified"),
            numa_nodes,
            virtual_machine: flags.contains(&"hypervisor"),
        }
    }

    /// Whether nothing is known (a file written before the fingerprint was recorded).
    pub fn is_unknown(&self) -> bool {
        *self == Hardware::default()
    }

    /// `family 25 model 17 stepping 1, avx512f ..., L3 32 MiB` for reports.
    pub fn summary(&self) -> String {
        let opt = |v: Option<u32>| v.map_or("?".to_string(), |v| v.to_string());
        let mib = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{} KiB", b / 1024));
        format!(
            "{} family {} model {} stepping {}, L1d {}, L2 {}, L3 {}, {}{}",
            self.vendor,
            opt(self.family),
            opt(self.model),
            opt(self.stepping),
            mib(self.l1d_bytes),
            mib(self.l2_bytes),
            mib(self.l3_bytes),
            self.flags.iter().filter(|f| f.as_str() != "hypervisor").cloned().collect::<Vec<_>>().join(" "),
            if self.virtual_machine { ", virtual machine" } else { "" }
        )
    }
}

/// `32K`, `1024K`, `32768K`, `8M` (sysfs cache sizes) in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().ok()?;
    let scale = match unit.trim() {
        "" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// The test-only cargo features: each changes the code under test on purpose (a slowed kernel,
/// a slowed decode, a fifth table entry), never the machine. Results record them, so that a
/// report or baseline made with one says so.
pub const TEST_ONLY_FEATURES: [&str; 3] =
    ["slow-fused-softmax", "test-fifth-optimization", "test-slow-decode"];

#[cfg(feature = "engine")]
fn features() -> Vec<String> {
    let enabled = [
        ("dhat-heap", cfg!(feature = "dhat-heap")),
        ("slow-fused-softmax", cfg!(feature = "slow-fused-softmax")),
        ("test-fifth-optimization", cfg!(feature = "test-fifth-optimization")),
        ("test-slow-decode", cfg!(feature = "test-slow-decode")),
    ];
    enabled.into_iter().filter(|&(_, on)| on).map(|(name, _)| name.to_string()).collect()
}

#[cfg(feature = "engine")]
fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

#[cfg(feature = "engine")]
fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(feature = "engine")]
fn memory_total_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(feature = "engine")]
fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_a_zen_1_from_a_zen_5_of_one_model_string() {
        let sys = tempfile::tempdir().unwrap();
        for (i, level, kind, size) in [
            (0, "1", "Data", "32K"),
            (1, "1", "Instruction", "32K"),
            (2, "2", "Unified", "512K"),
            (3, "3", "Unified", "8192K"),
        ] {
            let dir = sys.path().join(format!("cpu/cpu0/cache/index{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            for (f, v) in [("level", level), ("type", kind), ("size", size)] {
                std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
            }
        }
        std::fs::create_dir_all(sys.path().join("node/node0")).unwrap();
        std::fs::create_dir_all(sys.path().join("node/power")).unwrap();
        let zen1 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n\
                    stepping\t: 2\nmicrocode\t: 0x800126e\nflags\t\t: fpu sse4_2 avx avx2 fma hypervisor\n\n\
                    processor\t: 1\nflags\t\t: fpu avx512f\n";
        let h = Hardware::from_cpuinfo(zen1, sys.path());
        assert_eq!(
            (h.vendor.as_str(), h.family, h.model, h.stepping),
            ("AuthenticAMD", Some(23), Some(1), Some(2))
        );
        assert_eq!(h.microcode, "0x800126e");
        assert_eq!(
            h.flags,
            ["sse4_2", "avx", "avx2", "fma", "hypervisor"],
            "the first processor's flags only"
        );
        assert_eq!((h.l1d_bytes, h.l2_bytes, h.l3_bytes), (Some(32 << 10), Some(512 << 10), Some(8 << 20)));
        assert_eq!(h.numa_nodes, Some(1));
        assert!(h.virtual_machine);
        let zen5 = zen1.replace(": 23", ": 26").replace("fma hypervisor", "fma avx512f avx512vl hypervisor");
        assert_ne!(Hardware::from_cpuinfo(&zen5, sys.path()), h);
        assert!(
            h.summary().starts_with(
                "AuthenticAMD family 23 model 1 stepping 2, L1d 32 KiB, L2 512 KiB, L3 8192 KiB"
            )
        );
        assert_eq!(
            Hardware::from_cpuinfo("", Path::new("/nonexistent")),
            Hardware { vendor: "unknown".into(), microcode: "unknown".into(), ..Hardware::default() }
        );
    }

    #[test]
    fn cache_sizes_parse_in_sysfs_units() {
        assert_eq!(parse_size("32K"), Some(32768));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999999999999K"), None);
    }
}
