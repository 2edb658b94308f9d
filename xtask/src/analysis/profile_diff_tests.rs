use super::*;

/// `a` and `b` under `main;work`, `a`'s self samples `a`, `b`'s `b`, at `ms` per op.
fn profile(a: u64, b: u64, ms: f64) -> Folded {
    Folded::parse(&format!("main;smallmind::work;smallmind::a {a}\nmain;smallmind::work;smallmind::b;expf {b}\nmain;setup 2\n"), ms).unwrap()
}

fn frame<'a>(d: &'a CpuDiff, name: &str) -> &'a FrameChange {
    d.frames.iter().find(|f| f.frame == name).unwrap_or_else(|| panic!("{name} in {:?}", d.frames))
}

#[test]
fn the_frame_that_grew_is_found_and_totals_are_normalised() {
    let reference: Vec<Folded> = [50, 52, 48, 51].iter().map(|&a| profile(a, 100 - a, 1.0)).collect();
    // Twice the samples per profile (a longer profile), `a` at ~80% instead of ~50%.
    let candidate: Vec<Folded> = [160, 158, 162, 161].iter().map(|&a| profile(a, 200 - a, 1.0)).collect();
    let d = diff(("ref", &reference), ("cand", &candidate));
    assert_eq!(d.profiles, [4, 4]);
    let a = frame(&d, "smallmind::a");
    assert!(a.own.changed() && a.own.ms_change() > 0.0, "{a:?}");
    assert!((a.self_time.candidate - 160.25 / 202.0).abs() < 1e-9, "shares, not counts: {a:?}");
    let slower: Vec<&str> = d.changed_own(true).map(|f| f.frame.as_str()).collect();
    let faster: Vec<&str> = d.changed_own(false).map(|f| f.frame.as_str()).collect();
    assert_eq!(slower.first(), Some(&"smallmind::a"), "{slower:?}");
    // `b`'s samples end in `expf`: they count as `b`'s own time, not `expf`'s (not the engine's).
    assert!(faster.contains(&"smallmind::b") && !faster.contains(&"expf"), "{faster:?}");
    assert!(frame(&d, "expf").self_time.changed() && !frame(&d, "expf").own.changed());
    // `main` is on every stack: its inclusive share is 1 on both sides, unchanged.
    assert!(!frame(&d, "main").inclusive.changed());
}

#[test]
fn equal_profiles_change_nothing() {
    let set: Vec<Folded> = [50, 52, 48].iter().map(|&a| profile(a, 100 - a, 2.0)).collect();
    let d = diff(("x", &set), ("y", &set));
    assert!(
        d.frames.iter().all(|f| !f.self_time.changed() && !f.inclusive.changed() && !f.own.changed()),
        "{d:?}"
    );
    assert!(d.changed_frames().is_empty());
}

#[test]
fn one_profile_a_side_judges_nothing() {
    let d = diff(("x", &[profile(10, 90, 1.0)]), ("y", &[profile(90, 10, 1.0)]));
    assert!(frame(&d, "smallmind::a").self_time.difference.is_none());
    assert!(d.changed_frames().is_empty());
}

#[test]
fn time_per_op_weighs_each_share_by_its_profile() {
    // The same shares, but the candidate's ops take twice as long: every frame's time doubles.
    let reference: Vec<Folded> = [50, 50].iter().map(|&a| profile(a, 100 - a, 1.0)).collect();
    let candidate: Vec<Folded> = [50, 50].iter().map(|&a| profile(a, 100 - a, 2.0)).collect();
    let a = frame(&diff(("x", &reference), ("y", &candidate)), "smallmind::a").self_time.clone();
    assert!((a.ms_per_op[1] - 2.0 * a.ms_per_op[0]).abs() < 1e-12, "{a:?}");
    assert!(!a.changed(), "the share did not change: {a:?}");
}

#[test]
fn a_function_whose_share_grew_while_its_time_fell_is_no_suspect_of_a_speedup() {
    // The candidate is 4x faster per op; `b`'s share grows from 50% to 80%, its time falls.
    let reference: Vec<Folded> = [50, 52, 48].iter().map(|&a| profile(a, 100 - a, 4.0)).collect();
    let candidate: Vec<Folded> = [20, 21, 19].iter().map(|&a| profile(a, 100 - a, 1.0)).collect();
    let d = diff(("slow", &reference), ("fast", &candidate));
    let b = frame(&d, "smallmind::b");
    assert!(b.own.changed() && b.own.ms_change() < 0.0 && b.own.difference.unwrap().point > 0.0, "{b:?}");
    let faster: Vec<&str> = d.changed_own(false).map(|f| f.frame.as_str()).collect();
    assert_eq!(faster, ["smallmind::a"], "only `a` made it faster");
}

#[test]
fn hashes_are_stripped_and_bad_lines_named() {
    assert_eq!(
        function_path("smallmind::kernels::softmax::fused::h0123456789abcdef"),
        "smallmind::kernels::softmax::fused"
    );
    assert_eq!(function_path("core::hint::black_box"), "core::hint::black_box");
    assert_eq!(function_path("x::habc"), "x::habc");
    let err = Folded::parse("main;a 3\nmain;b x\n", 1.0).unwrap_err();
    assert!(err.starts_with("line 2:"), "{err}");
}

#[test]
fn differential_lines_keep_only_changed_leaves_different() {
    let reference = [profile(50, 50, 1.0)];
    let candidate = [profile(80, 20, 1.0)];
    let changed: BTreeSet<String> = ["smallmind::a".to_string()].into();
    let lines = differential_lines(&reference, &candidate, &changed);
    let counts = |stack: &str| -> (u64, u64) {
        let line = lines.iter().find(|l| l.starts_with(&format!("{stack} "))).unwrap();
        let mut it = line.rsplit(' ');
        let after = it.next().unwrap().parse().unwrap();
        (it.next().unwrap().parse().unwrap(), after)
    };
    let (before_a, after_a) = counts("main;smallmind::work;smallmind::a");
    assert!(after_a > before_a, "{lines:?}");
    let (before_b, after_b) = counts("main;smallmind::work;smallmind::b;expf");
    assert_eq!(before_b, after_b, "b is not among the changed: no colour");
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted, lines, "inferno needs sorted lines");
}

/// An ESC in collapsed stacks once made the differential flame graph invalid XML and went raw
/// into README.md: control characters are written out as `\u{1b}` from the parse on, so the
/// stacks, the SVG inferno draws from them and the report hold printable text only.
#[test]
fn control_characters_in_frame_names_are_written_out_visibly() {
    let text = "main;smallmind::work;evil\u{1b}[31mframe 30\nmain;smallmind::work;smallmind::b 70\n";
    let reference = [Folded::parse(text, 1.0).unwrap()];
    let candidate = [Folded::parse(&text.replace(" 30\n", " 60\n"), 1.0).unwrap()];
    let frames: Vec<&String> = reference[0].stacks.iter().flat_map(|(s, _)| s).collect();
    assert!(frames.contains(&&"evil\\u{1b}[31mframe".to_string()), "{frames:?}");
    let changed: BTreeSet<String> = frames.iter().map(|f| f.to_string()).collect();
    let lines = differential_lines(&reference, &candidate, &changed);
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(
        &mut inferno::flamegraph::Options::default(),
        lines.iter().map(String::as_str),
        &mut svg,
    )
    .unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.contains("evil\\u{1b}[31mframe"), "the frame is in the graph, written out");
    let control = |s: &str| s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    assert!(!control(&svg) && !lines.iter().any(|l| control(l)));
}
