//! The optimizations as runtime toggles, declared once in [`TABLE`] and gathered in one value.
//!
//! This module owns the table (each optimization's stable kebab-case name, one-line description
//! and the one place it is read) and everything derived from it: [`Optimization`], the
//! [`Optimizations`] value with one `bool` per entry, parsing from the CLI and `SMALLMIND_OPT`,
//! display, the serde form of results files and every combination. It decides nothing: each
//! toggle is read in exactly one place, the entry's `read_in`.
//!
//! Adding an optimization is one entry in the `optimizations!` invocation below and one read
//! site (`opts.FIELD` where the entry says); ARCHITECTURE.md lists the steps. The test-only
//! `test-fifth-optimization` feature adds `test-noop` that way and nothing else.

use std::fmt;
use std::str::FromStr;

/// One row of [`TABLE`]; `smallmind optimizations --json` prints the table as an array of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OptimizationInfo {
    /// The stable name used by the CLI, experiment files and reports (`kv-cache`).
    pub name: &'static str,
    /// One line saying what turning it on does.
    pub description: &'static str,
    /// The one place it is read, as a path in the crate (`generate::Session::next_logits`).
    pub read_in: &'static str,
}

/// Declares the table and derives from it the enum, the struct of flags and their accessors.
///
/// Each entry is `Variant, field: "name", read_in: "path", "description";` with optional
/// attributes (a `#[cfg(...)]`) that apply to everything the entry generates.
macro_rules! optimizations {
    ($($(#[$attr:meta])* $variant:ident, $field:ident: $name:literal, read_in: $read_in:literal, $description:literal;)*) => {
        /// The table every other list of optimizations derives from, in the order of reports,
        /// bit masks and the results file's `optimizations` object.
        pub const TABLE: &[OptimizationInfo] = &[
            $($(#[$attr])* OptimizationInfo { name: $name, description: $description, read_in: $read_in },)*
        ];

        /// One optimization, by its row in [`TABLE`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Optimization {
            $($(#[$attr])* #[doc = $description] $variant,)*
        }

        impl Optimization {
            /// Every optimization, in table order.
            pub const ALL: [Optimization; TABLE.len()] = [$($(#[$attr])* Optimization::$variant,)*];
        }

        /// Which optimizations are on: one flag per row of [`TABLE`]. Passed explicitly to
        /// everything that runs the model; never global. Serialized as a JSON object of the
        /// names in table order (`{"tensor-pool":true,...}`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub struct Optimizations {
            $($(#[$attr])* #[doc = concat!("`", $name, "`: ", $description, " Read in `", $read_in, "`.")]
            #[serde(rename = $name)]
            pub $field: bool,)*
        }

        impl Optimizations {
            /// Whether `opt` is on.
            pub fn get(&self, opt: Optimization) -> bool {
                match opt {
                    $($(#[$attr])* Optimization::$variant => self.$field,)*
                }
            }

            /// Turns `opt` on or off.
            pub fn set(&mut self, opt: Optimization, on: bool) {
                match opt {
                    $($(#[$attr])* Optimization::$variant => self.$field = on,)*
                }
            }

            /// Every optimization off: the seed plan's "current code" (`docs/seed-plan.md`).
            pub fn none() -> Self {
                Optimizations { $($(#[$attr])* $field: false,)* }
            }
        }
    };
}

optimizations! {
    TensorPool, tensor_pool: "tensor-pool", read_in: "layers::Ctx::buf",
        "Rent intermediate buffers from a size-classed pool instead of allocating them per forward.";
    BatchedMatmul, batched_matmul: "batched-matmul", read_in: "layers::attention::scores_of",
        "Attention scores per head as one Q·Kᵀ GEMM instead of one dot product per (i, j).";
    FusedSoftmax, fused_softmax: "fused-softmax", read_in: "layers::attention::softmax_of",
        "Causal softmax over j <= i only, in one fused pass, instead of exp over the whole row.";
    KvCache, kv_cache: "kv-cache", read_in: "generate::Session::next_logits",
        "Keep per-layer keys and values; decode computes q/k/v for the new token only.";
    // Test-only: shows that a table entry and its read site are all a new optimization needs.
    #[cfg(feature = "test-fifth-optimization")]
    TestNoop, test_noop: "test-noop", read_in: "generate::finite_check",
        "Test-only: picks between two equal logit checks; changes nothing.";
}

impl Optimization {
    /// This optimization's row in [`TABLE`].
    pub fn info(self) -> &'static OptimizationInfo {
        &TABLE[self as usize]
    }

    /// The stable name used by the CLI, experiment files and reports.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The valid names, comma separated, for error messages and help.
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

/// What is wrong with an optimization setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptParseError {
    #[error("unknown optimization `{0}`; valid names: {names}, all", names = Optimization::valid_names())]
    UnknownName(String),
    #[error("bad optimization setting `{0}`; write NAME=on or NAME=off (NAME one of {names}, all)", names = Optimization::valid_names())]
    BadSetting(String),
}

impl Optimizations {
    /// Every optimization on: the default.
    pub fn all() -> Self {
        Self::from_bits((1 << TABLE.len()) - 1)
    }

    /// Bit `i` set means `Optimization::ALL[i]` is on; `0..2^N` enumerates every combination.
    pub fn from_bits(bits: u32) -> Self {
        let mut opts = Self::none();
        for (i, opt) in Optimization::ALL.into_iter().enumerate() {
            opts.set(opt, bits & (1 << i) != 0);
        }
        opts
    }

    /// The inverse of [`Optimizations::from_bits`].
    pub fn bits(&self) -> u32 {
        Optimization::ALL.into_iter().enumerate().map(|(i, opt)| u32::from(self.get(opt)) << i).sum()
    }

    /// Every one of the 2^N combinations of the N rows of [`TABLE`], all off first, all on last.
    pub fn every_combination() -> impl Iterator<Item = Optimizations> {
        (0..1u32 << TABLE.len()).map(Optimizations::from_bits)
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
        assert_eq!(all.len(), 1 << TABLE.len());
        assert_eq!(all[0], Optimizations::none());
        assert_eq!(*all.last().unwrap(), Optimizations::all());
        for (bits, opts) in all.iter().enumerate() {
            assert_eq!(opts.bits() as usize, bits);
        }
    }

    #[test]
    fn display_parses_back() {
        let mut opts = Optimizations::all();
        opts.apply_list("kv-cache=off, fused-softmax=off").unwrap();
        let on = Optimization::ALL.map(|o| opts.get(o));
        assert_eq!(on[..4], [true, true, false, false]);
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

    /// Committed results files hold this object and are re-rendered byte for byte: the serde
    /// form must not change (names, order, spacing).
    #[cfg(not(feature = "test-fifth-optimization"))]
    #[test]
    fn serde_form_is_pinned() {
        const PINNED: &str =
            r#"{"tensor-pool":true,"batched-matmul":true,"fused-softmax":true,"kv-cache":true}"#;
        assert_eq!(serde_json::to_string(&Optimizations::all()).unwrap(), PINNED);
        let back: Optimizations = serde_json::from_str(PINNED).unwrap();
        assert_eq!(back, Optimizations::all());
        for opts in Optimizations::every_combination() {
            let json = serde_json::to_string(&opts).unwrap();
            assert_eq!(serde_json::from_str::<Optimizations>(&json).unwrap(), opts, "{json}");
        }
        let mixed = Optimizations::from_bits(0b1010);
        assert_eq!(
            serde_json::to_string(&mixed).unwrap(),
            r#"{"tensor-pool":false,"batched-matmul":true,"fused-softmax":false,"kv-cache":true}"#
        );
    }

    #[test]
    fn names_fields_and_read_sites_agree() {
        let json = serde_json::to_string(&Optimizations::none()).unwrap();
        let fields: Vec<String> = TABLE.iter().map(|e| format!("\"{}\":false", e.name)).collect();
        assert_eq!(json, format!("{{{}}}", fields.join(",")), "the struct's fields follow the table");
        for (i, opt) in Optimization::ALL.into_iter().enumerate() {
            assert_eq!(opt as usize, i);
            assert_eq!(opt.name().parse::<Optimization>().unwrap(), opt);
        }
        // Each read site names a function in this crate: `module::...::function`.
        for entry in TABLE {
            assert!(entry.read_in.contains("::") && !entry.description.is_empty(), "{entry:?}");
        }
    }

    /// The fifth entry exists only through its table row and its read site
    /// (`generate::finite_check`): every derived list picks it up.
    #[cfg(feature = "test-fifth-optimization")]
    #[test]
    fn a_fifth_entry_is_picked_up_everywhere() {
        assert_eq!(TABLE.len(), 5);
        assert_eq!(Optimizations::every_combination().count(), 32);
        assert!(Optimization::valid_names().ends_with(", test-noop"));
        let mut opts = Optimizations::all();
        opts.apply("test-noop=off").unwrap();
        assert!(!opts.test_noop && opts.kv_cache);
        assert!(opts.to_string().ends_with(",test-noop=off"));
        assert!(serde_json::to_string(&opts).unwrap().ends_with(r#","test-noop":false}"#));
    }
}
