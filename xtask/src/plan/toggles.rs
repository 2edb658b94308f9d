//! A variant's toggles as an experiment file writes them: `{ all = false, kv-cache = true }`.

use serde::{Deserialize, Serialize};
use smallmind::{Optimization, Optimizations};

/// `{ all = false, kv-cache = true }`: the engine's optimizations by their names, each on or off;
/// those not named are on, unless `all = false`. The names come from the engine's table
/// ([`smallmind::Optimization::ALL`]): a new optimization needs no edit here.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptTable {
    pub all: Option<bool>,
    /// The toggles named, in the table's order.
    pub named: Vec<(Optimization, bool)>,
}

impl OptTable {
    /// The table that selects exactly `opts`.
    pub fn exactly(opts: Optimizations) -> OptTable {
        OptTable { all: Some(false), named: Optimization::ALL.iter().map(|&o| (o, opts.get(o))).collect() }
    }

    /// The optimizations this table selects.
    pub fn resolve(&self) -> Optimizations {
        let mut opts = if self.all == Some(false) { Optimizations::none() } else { Optimizations::all() };
        for &(o, on) in &self.named {
            opts.set(o, on);
        }
        opts
    }

    fn named(&self, o: Optimization) -> Option<bool> {
        self.named.iter().find(|(n, _)| *n == o).map(|&(_, on)| on)
    }
}

/// As a map of `all` and every optimization in table order, `null` for those not named.
impl Serialize for OptTable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1 + Optimization::ALL.len()))?;
        map.serialize_entry("all", &self.all)?;
        for &o in Optimization::ALL.iter() {
            map.serialize_entry(o.name(), &self.named(o))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OptTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OptTableVisitor)
    }
}

/// A key of an optimizations table: `all` or an optimization's name. An unknown key is an error
/// raised while the key is read, so that the TOML parser points at the key itself.
enum OptKey {
    All,
    One(Optimization),
}

impl<'de> Deserialize<'de> for OptKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = OptKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`all` or an optimization's name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OptKey, E> {
                if v == "all" {
                    return Ok(OptKey::All);
                }
                v.parse().map(OptKey::One).map_err(|_| {
                    let names: Vec<String> = std::iter::once("all")
                        .chain(Optimization::ALL.iter().map(|o| o.name()))
                        .map(|n| format!("`{n}`"))
                        .collect();
                    E::custom(format_args!("unknown field `{v}`, expected one of {}", names.join(", ")))
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

struct OptTableVisitor;

impl<'de> serde::de::Visitor<'de> for OptTableVisitor {
    type Value = OptTable;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table of optimization names, each `true` or `false`")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OptTable, A::Error> {
        let mut table = OptTable::default();
        while let Some(key) = map.next_key::<OptKey>()? {
            let value: Option<bool> = map.next_value()?;
            match key {
                OptKey::All if table.all.is_some() => return Err(serde::de::Error::duplicate_field("all")),
                OptKey::All => table.all = value,
                OptKey::One(o) if table.named(o).is_some() => {
                    return Err(serde::de::Error::custom(format_args!("duplicate field `{}`", o.name())));
                }
                OptKey::One(o) => {
                    if let Some(on) = value {
                        table.named.push((o, on));
                    }
                }
            }
        }
        // In table order, whatever the file's: two tables naming the same toggles are equal.
        table.named.sort_by_key(|&(o, _)| o);
        Ok(table)
    }
}
