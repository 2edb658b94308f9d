//! The environment a measurement ran in: machine, OS, build and provenance. Runs are compared in
//! absolute terms only when these agree (SMALLMIND_FACTS.md: before and after ran on different
//! machines). Linux facts come from `/proc`; elsewhere they read "unknown".

use serde::{Deserialize, Serialize};

/// Where and with what a results file was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub cpu_model: String,
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

impl Environment {
    /// The environment of this process now.
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
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_total_bytes: memory_total_bytes(),
            hostname: read_trimmed("/proc/sys/kernel/hostname"),
            os: os_name(),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            simd_level: crate::kernels::simd_level().into(),
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

    /// Whether absolute figures from `self` and `other` may be compared: same machine, OS,
    /// compiler and build settings (commit and time may differ).
    pub fn comparable_with(&self, other: &Environment) -> bool {
        self.cpu_model == other.cpu_model
            && self.logical_cores == other.logical_cores
            && self.hostname == other.hostname
            && self.kernel == other.kernel
            && self.rustc == other.rustc
            && self.build_profile == other.build_profile
            && self.features == other.features
            && self.target_cpu == other.target_cpu
            && self.simd_level == other.simd_level
    }
}

fn features() -> Vec<String> {
    let mut features = Vec::new();
    if cfg!(feature = "dhat-heap") {
        features.push("dhat-heap".to_string());
    }
    features
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

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

fn memory_total_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}
