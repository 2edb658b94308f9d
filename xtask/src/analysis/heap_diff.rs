//! Where the allocations went: two dhat heap profiles compared allocation site by allocation
//! site. A site is the innermost engine function on the allocation's stack (its function path,
//! without address or file), so that `Vec::with_capacity` called from a layer counts for the
//! layer; stacks with no engine frame are grouped under their innermost frame. Counts are exact
//! (the same run twice gives the same counts): a site changed when its blocks or bytes differ.

use super::profile_diff::{function_path, is_engine_frame};
use std::collections::BTreeMap;

/// One site's allocations over a profile pass.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Site {
    pub blocks: u64,
    pub bytes: u64,
    /// Bytes live at the pass's peak (dhat's `gb`).
    pub peak_bytes: u64,
}

/// A heap profile by site, and the ops its pass ran.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapProfile {
    pub sites: BTreeMap<String, Site>,
    pub ops: usize,
}

/// The site of a dhat frame table entry `0x…: path::to::fn (file:line:col)`: its function path.
fn frame_name(entry: &str) -> String {
    let entry = entry.split_once(": ").map_or(entry, |(_, rest)| rest);
    let entry = match entry.rfind(" (") {
        Some(i) if entry.ends_with(')') => &entry[..i],
        _ => entry,
    };
    function_path(entry)
}

impl HeapProfile {
    /// Parses dhat's JSON (`pps` with `tbk`, `tb`, `gb` and frame indices `fs`, innermost first,
    /// into `ftbl`). Errors say what is missing.
    pub fn parse(text: &str, ops: usize) -> Result<HeapProfile, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a dhat profile: {e}"))?;
        let ftbl: Vec<String> = v["ftbl"]
            .as_array()
            .ok_or("no frame table (`ftbl`)")?
            .iter()
            .map(|f| f.as_str().map(frame_name).ok_or("a frame that is not a string"))
            .collect::<Result<_, _>>()?;
        let mut sites: BTreeMap<String, Site> = BTreeMap::new();
        for pp in v["pps"].as_array().ok_or("no program points (`pps`)")? {
            let number = |k: &str| pp[k].as_u64().ok_or(format!("a program point without `{k}`"));
            let frames: Vec<&str> = pp["fs"]
                .as_array()
                .ok_or("a program point without frames (`fs`)")?
                .iter()
                .filter_map(|i| ftbl.get(i.as_u64()? as usize).map(String::as_str))
                .collect();
            let site = frames
                .iter()
                .find(|f| is_engine_frame(f))
                .or(frames.first())
                .map_or("[unknown]".to_string(), |f| f.to_string());
            let s = sites.entry(site).or_default();
            s.blocks += number("tbk")?;
            s.bytes += number("tb")?;
            s.peak_bytes += number("gb")?;
        }
        Ok(HeapProfile { sites, ops: ops.max(1) })
    }
}

/// One site in both profiles, per op.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteChange {
    pub site: String,
    /// Per op: reference, candidate.
    pub blocks: [f64; 2],
    pub bytes: [f64; 2],
    pub peak_bytes: [u64; 2],
}

/// Two heap profiles compared.
#[derive(Debug, Clone, PartialEq)]
pub struct HeapDiff {
    pub reference: String,
    pub candidate: String,
    /// The sites whose blocks or bytes per op differ, largest change of bytes first.
    pub changed: Vec<SiteChange>,
}

impl HeapDiff {
    /// The sites whose blocks per op grew (`more`) or fell, largest change first.
    pub fn blocks_changed(&self, more: bool) -> Vec<&SiteChange> {
        let mut out: Vec<&SiteChange> = self
            .changed
            .iter()
            .filter(|s| s.blocks[1] != s.blocks[0] && (s.blocks[1] > s.blocks[0]) == more)
            .collect();
        out.sort_by(|a, b| (b.blocks[1] - b.blocks[0]).abs().total_cmp(&(a.blocks[1] - a.blocks[0]).abs()));
        out
    }
}

/// Compares `candidate`'s heap profile with `reference`'s.
pub fn diff(reference: (&str, &HeapProfile), candidate: (&str, &HeapProfile)) -> HeapDiff {
    let (r, c) = (reference.1, candidate.1);
    let mut names: Vec<&String> = r.sites.keys().chain(c.sites.keys()).collect();
    names.sort();
    names.dedup();
    let mut changed: Vec<SiteChange> = names
        .into_iter()
        .map(|site| {
            let (a, b) = (
                r.sites.get(site).copied().unwrap_or_default(),
                c.sites.get(site).copied().unwrap_or_default(),
            );
            SiteChange {
                site: site.clone(),
                blocks: [a.blocks as f64 / r.ops as f64, b.blocks as f64 / c.ops as f64],
                bytes: [a.bytes as f64 / r.ops as f64, b.bytes as f64 / c.ops as f64],
                peak_bytes: [a.peak_bytes, b.peak_bytes],
            }
        })
        .filter(|s| s.blocks[0] != s.blocks[1] || s.bytes[0] != s.bytes[1])
        .collect();
    changed.sort_by(|a, b| {
        (b.bytes[1] - b.bytes[0]).abs().total_cmp(&(a.bytes[1] - a.bytes[0]).abs()).then(a.site.cmp(&b.site))
    });
    HeapDiff { reference: reference.0.to_string(), candidate: candidate.0.to_string(), changed }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dhat profile: sites `(frames innermost first, blocks, bytes)`.
    fn dhat(pps: &[(&[usize], u64, u64)]) -> String {
        let ftbl = [
            "[root]",
            "0x1: alloc::raw_vec::RawVec<T>::with_capacity (src/raw_vec.rs:1:1)",
            "0x2: smallmind::layers::mlp::Mlp::forward (src/layers/mlp.rs:10:5)",
            "0x3: smallmind::pool::TensorPool::rent (src/pool.rs:3:3)",
            "0x4: main (src/main.rs:1:1)",
        ];
        let pps: Vec<String> = pps
            .iter()
            .map(|(fs, tbk, tb)| format!(r#"{{"tb":{tb},"tbk":{tbk},"gb":{tb},"fs":{fs:?}}}"#))
            .collect();
        format!(r#"{{"dhatFileVersion":2,"pps":[{}],"ftbl":{ftbl:?}}}"#, pps.join(","))
    }

    #[test]
    fn sites_are_engine_functions_and_changes_are_exact() {
        // Fresh buffers: the MLP allocates 40 blocks per op; pooled: the pool rents 2.
        let fresh = HeapProfile::parse(&dhat(&[(&[1, 2, 4], 40, 4000), (&[4], 1, 10)]), 1).unwrap();
        let pooled = HeapProfile::parse(&dhat(&[(&[1, 3, 2, 4], 4, 400), (&[4], 1, 10)]), 2).unwrap();
        assert_eq!(fresh.sites["smallmind::layers::mlp::Mlp::forward"].blocks, 40);
        assert_eq!(fresh.sites["main"].blocks, 1, "no engine frame: the innermost one");
        let d = diff(("fresh", &fresh), ("pooled", &pooled));
        let fewer = d.blocks_changed(false);
        assert_eq!(fewer[0].site, "smallmind::layers::mlp::Mlp::forward");
        assert_eq!(fewer[0].blocks, [40.0, 0.0]);
        let more = d.blocks_changed(true);
        assert_eq!(more[0].site, "smallmind::pool::TensorPool::rent");
        assert_eq!(more[0].blocks, [0.0, 2.0], "per op: 4 blocks over 2 ops");
        // `main`: 1 block per op against 0.5: changed too (per op, exactly).
        assert!(d.changed.iter().any(|s| s.site == "main"));
        // The same profile: nothing changed.
        assert!(diff(("a", &fresh), ("b", &fresh)).changed.is_empty());
    }

    #[test]
    fn a_damaged_profile_says_what_is_missing() {
        assert!(HeapProfile::parse("{}", 1).unwrap_err().contains("ftbl"));
        assert!(HeapProfile::parse(r#"{"ftbl":[],"pps":[{"fs":[]}]}"#, 1).unwrap_err().contains("tbk"));
    }
}
