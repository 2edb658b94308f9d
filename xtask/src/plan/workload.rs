//! What one generate call does, declared once: [`workload!`] makes the full [`Workload`], the
//! partial [`WorkloadPatch`] (a variant's overrides, one sweep point's values), the [`Sweep`]
//! (values per field), the field-by-field differences a baseline misfit names, and the
//! `smallmind bench` flags. Adding a workload field is one line here (and the engine's flag).

use serde::{Deserialize, Serialize};

/// A field's value as a `smallmind bench` flag value (`None`: the flag is left out).
trait FlagValue {
    fn flag_value(&self) -> Option<String>;
}

macro_rules! flag_value_by_display {
    ($($ty:ty),*) => {$(
        impl FlagValue for $ty {
            fn flag_value(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}
flag_value_by_display!(String, usize, u64, f32);

impl<T: FlagValue> FlagValue for Option<T> {
    fn flag_value(&self) -> Option<String> {
        self.as_ref().and_then(FlagValue::flag_value)
    }
}

/// A field's value as the plain text of a label or a misfit (`none` for an absent one).
fn plain<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) => "none".into(),
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

macro_rules! workload {
    ($( $(#[doc = $doc:literal])* $(#[serde($($attr:tt)*)])? $field:ident: $ty:ty, )*) => {
        /// What one generate call does, as `smallmind bench` flags.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Workload {
            $( $(#[doc = $doc])* $(#[serde($($attr)*)])? pub $field: $ty, )*
        }

        /// A partial [`Workload`]: a variant's overrides, or one point of a sweep.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct WorkloadPatch {
            $( pub $field: Option<$ty>, )*
        }

        /// Values to sweep each workload field over.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Sweep {
            $( pub $field: Option<Vec<$ty>>, )*
        }

        impl Workload {
            /// The `smallmind bench` flags of this workload, in declaration order.
            pub fn bench_flags(&self) -> Vec<String> {
                let mut flags = Vec::new();
                $(
                    if let Some(v) = self.$field.flag_value() {
                        flags.push(format!("--{}", stringify!($field).replace('_', "-")));
                        flags.push(v);
                    }
                )*
                flags
            }

            /// `field before -> now` for every field that differs from `before`.
            pub fn changes_from(&self, before: &Workload) -> Vec<String> {
                let mut out = Vec::new();
                $(
                    if self.$field != before.$field {
                        out.push(format!(
                            "{} {} -> {}",
                            stringify!($field),
                            plain(&before.$field),
                            plain(&self.$field)
                        ));
                    }
                )*
                out
            }

            /// This workload with `patch`'s fields set.
            pub fn patched(&self, patch: &WorkloadPatch) -> Workload {
                let mut w = self.clone();
                $( if let Some(v) = &patch.$field { w.$field = v.clone(); } )*
                w
            }
        }

        impl WorkloadPatch {
            /// The fields `self` sets, and `later`'s over them.
            pub fn then(&self, later: &WorkloadPatch) -> WorkloadPatch {
                WorkloadPatch { $( $field: later.$field.clone().or_else(|| self.$field.clone()), )* }
            }
        }

        impl Sweep {
            /// The swept fields in declaration order, each value as the patch that sets it and
            /// its label (`max_new_tokens=64`); fields without values are left out.
            pub fn axes(&self) -> Vec<Vec<(WorkloadPatch, String, serde_json::Value)>> {
                let mut axes = Vec::new();
                $(
                    if let Some(values) = self.$field.as_ref().filter(|v| !v.is_empty()) {
                        axes.push(
                            values
                                .iter()
                                .map(|v| {
                                    let patch = WorkloadPatch { $field: Some(v.clone()), ..Default::default() };
                                    let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                                    (patch, stringify!($field).to_string(), json)
                                })
                                .collect::<Vec<_>>(),
                        );
                    }
                )*
                axes
            }
        }
    };
}

workload! {
    /// A preset name or a model directory.
    model: String,
    /// Prompt text (encoded inside each op), or ...
    prompt: Option<String>,
    /// ... a seeded synthetic prompt of this many tokens.
    prompt_tokens: Option<usize>,
    max_new_tokens: usize,
    #[serde(default)]
    temperature: f32,
    #[serde(default)]
    top_k: usize,
    #[serde(default = "one_f32")]
    top_p: f32,
    #[serde(default)]
    seed: u64,
    #[serde(default = "one")]
    threads: usize,
}

fn one() -> usize {
    1
}

fn one_f32() -> f32 {
    1.0
}

impl WorkloadPatch {
    /// A variant's overrides: a prompt given one way replaces the other way.
    pub fn as_override(&self) -> WorkloadPatch {
        let mut patch = self.clone();
        if self.prompt.flatten_ref().is_some() {
            patch.prompt_tokens = Some(None);
        }
        if self.prompt_tokens.flatten_ref().is_some() {
            patch.prompt = Some(None);
        }
        patch
    }
}

/// `Option<Option<T>>` as the inner value, if both are set.
trait FlattenRef<T> {
    fn flatten_ref(&self) -> Option<&T>;
}

impl<T> FlattenRef<T> for Option<Option<T>> {
    fn flatten_ref(&self) -> Option<&T> {
        self.as_ref().and_then(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Workload {
        Workload {
            model: "tiny".into(),
            prompt: None,
            prompt_tokens: Some(8),
            max_new_tokens: 16,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            threads: 1,
        }
    }

    #[test]
    fn the_bench_flags_name_every_set_field_in_order() {
        assert_eq!(
            base().bench_flags().join(" "),
            "--model tiny --prompt-tokens 8 --max-new-tokens 16 --temperature 0 --top-k 0 --top-p 1 --seed 0 \
             --threads 1"
        );
    }

    #[test]
    fn a_prompt_override_replaces_the_other_kind_of_prompt() {
        let patch: WorkloadPatch = toml::from_str("prompt = \"hi\"").unwrap();
        let w = base().patched(&patch.as_override());
        assert_eq!((w.prompt.as_deref(), w.prompt_tokens), (Some("hi"), None));
        assert_eq!(w.changes_from(&base()), ["prompt none -> hi", "prompt_tokens 8 -> none"]);
    }
}
