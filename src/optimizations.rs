//! The four "quick wins" of the seed plan as runtime toggles, gathered in one value.
//!
//! This module owns the names (`tensor-pool`, `batched-matmul`, `fused-softmax`, `kv-cache`),
//! their parsing from the CLI and the `SMALLMIND_OPT` environment variable, and their display.
//! It does not decide anything: each toggle is read in exactly one place (see ARCHITECTURE.md):
//!
//! | toggle | read in |
//! |---|---|
//! | `tensor-pool` | [`crate::layers::Ctx::buf`] |
//! | `batched-matmul` | `scores_of` in [`crate::layers::attention`] |
//! | `fused-softmax` | `softmax_of` in [`crate::layers::attention`] |
//! | `kv-cache` | [`crate::generate::Session::next_logits`] |

use std::fmt;
use std::str::FromStr;

/// One optimization of the seed plan, by its stable kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Optimization {
    /// Rent intermediate buffers from a size-classed pool instead of allocating them per forward.
    TensorPool,
    /// Attention scores per head as one `Q·Kᵀ` GEMM instead of one dot product per (i, j).
    BatchedMatmul,
    /// Causal softmax over `j <= i` only, in one fused pass, instead of exp over the whole row.
    FusedSoftmax,
    /// Keep per-layer keys and values; decode computes q/k/v for the new token only.
    KvCache,
}

impl Optimization {
    /// Every optimization, in the order used by reports and bit masks.
    pub const ALL: [Optimization; 4] = [
        Optimization::TensorPool,
        Optimization::BatchedMatmul,
        Optimization::FusedSoftmax,
        Optimization::KvCache,
    ];

    /// The stable name used by the CLI, experiment files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Optimization::TensorPool => "tensor-pool",
            Optimization::BatchedMatmul => "batched-matmul",
            Optimization::FusedSoftmax => "fused-softmax",
            Optimization::KvCache => "kv-cache",
        }
    }

    /// The valid names, comma separated, for error messages.
    pub fn valid_names() -> String {
        Optimization::ALL.map(Optimization::name).join(", ")
    }
}

impl fmt::Display for Optimization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Optimization {
    type Err = OptParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Optimization::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| OptParseError::UnknownName(s.to_string()))
    }
}

/// Which optimizations are on. Passed explicitly to everything that runs the model; never global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Optimizations {
    /// `tensor-pool`: see [`Optimization::TensorPool`].
    pub tensor_pool: bool,
    /// `batched-matmul`: see [`Optimization::BatchedMatmul`].
    pub batched_matmul: bool,
    /// `fused-softmax`: see [`Optimization::FusedSoftmax`].
    pub fused_softmax: bool,
    /// `kv-cache`: see [`Optimization::KvCache`].
    pub kv_cache: bool,
}

/// What is wrong with an optimization setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptParseError {
    #[error("unknown optimization `{0}`; valid names: {names}, all", names = Optimization::valid_names())]
    UnknownName(String),
    #[error("bad optimization setting `{0}`; write NAME=on or NAME=off (NAME one of {names}, all)", names = Optimization::valid_names())]
    BadSetting(String),
}

impl Optimizations {
    /// Every optimization off: the seed plan's "current code".
    pub fn none() -> Self {
        Self::from_bits(0)
    }

    /// Every optimization on: the default.
    pub fn all() -> Self {
        Self::from_bits(0b1111)
    }

    /// Whether `opt` is on.
    pub fn get(&self, opt: Optimization) -> bool {
        match opt {
            Optimization::TensorPool => self.tensor_pool,
            Optimization::BatchedMatmul => self.batched_matmul,
            Optimization::FusedSoftmax => self.fused_softmax,
            Optimization::KvCache => self.kv_cache,
        }
    }

    /// Turns `opt` on or off.
    pub fn set(&mut self, opt: Optimization, on: bool) {
        match opt {
            Optimization::TensorPool => self.tensor_pool = on,
            Optimization::BatchedMatmul => self.batched_matmul = on,
            Optimization::FusedSoftmax => self.fused_softmax = on,
            Optimization::KvCache => self.kv_cache = on,
        }
    }

    /// Bit `i` set means `Optimization::ALL[i]` is on; `0..16` enumerates every combination.
    pub fn from_bits(bits: u8) -> Self {
        let mut opts = Optimizations {
            tensor_pool: false,
            batched_matmul: false,
            fused_softmax: false,
            kv_cache: false,
        };
        for (i, opt) in Optimization::ALL.into_iter().enumerate() {
            opts.set(opt, bits & (1 << i) != 0);
        }
        opts
    }

    /// The inverse of [`Optimizations::from_bits`].
    pub fn bits(&self) -> u8 {
        Optimization::ALL.into_iter().enumerate().map(|(i, opt)| u8::from(self.get(opt)) << i).sum()
    }

    /// Every one of the 16 combinations, all off first.
    pub fn every_combination() -> impl Iterator<Item = Optimizations> {
        (0..16u8).map(Optimizations::from_bits)
    }

    /// Applies one `NAME=on|off` setting (`all=on` and `all=off` too).
    pub fn apply(&mut self, setting: &str) -> Result<(), OptParseError> {
        let (name, value) =
            setting.split_once('=').ok_or_else(|| OptParseError::BadSetting(setting.to_string()))?;
        let on = match value.trim() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => return Err(OptParseError::BadSetting(setting.to_string())),
        };
        match name.trim() {
            "all" => *self = if on { Self::all() } else { Self::none() },
            name => self.set(name.parse()?, on),
        }
        Ok(())
    }

    /// Applies a comma-separated list of settings, as in `SMALLMIND_OPT="kv-cache=off,fused-softmax=off"`.
    pub fn apply_list(&mut self, list: &str) -> Result<(), OptParseError> {
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).try_for_each(|s| self.apply(s))
    }
}

impl Default for Optimizations {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for Optimizations {
    /// `tensor-pool=on,batched-matmul=off,...`: the form [`Optimizations::apply_list`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Optimization::ALL
            .iter()
            .map(|&o| format!("{}={}", o, if self.get(o) { "on" } else { "off" }))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_over_every_combination() {
        let all: Vec<_> = Optimizations::every_combination().collect();
        assert_eq!(all.len(), 16);
        assert_eq!(all[0], Optimizations::none());
        assert_eq!(all[15], Optimizations::all());
        for (bits, opts) in all.iter().enumerate() {
            assert_eq!(opts.bits() as usize, bits);
        }
    }

    #[test]
    fn display_parses_back() {
        let mut opts = Optimizations::all();
        opts.apply_list("kv-cache=off, fused-softmax=off").unwrap();
        let on = Optimization::ALL.map(|o| opts.get(o));
        assert_eq!(on, [true, true, false, false]);
        let mut back = Optimizations::none();
        back.apply_list(&opts.to_string()).unwrap();
        assert_eq!(back, opts);
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = Optimizations::all().apply("kv-cash=on").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("kv-cash"), "{msg}");
        assert!(msg.contains("tensor-pool, batched-matmul, fused-softmax, kv-cache"), "{msg}");
        assert!(matches!(Optimizations::all().apply("kv-cache=maybe"), Err(OptParseError::BadSetting(_))));
    }
}
