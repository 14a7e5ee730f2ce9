//! Reads criterion's medians back after a run and prints ratios, so that a
//! figure is always a ratio of two measurements from the same run.
#![allow(dead_code)]

use std::path::PathBuf;

/// Where criterion wrote its results: `<target>/criterion`.
fn criterion_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|p| p.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time in ns of benchmark `group/function/param`, if it ran.
pub(crate) fn median_ns(path: &str) -> Option<f64> {
    let file = criterion_dir().join(path).join("new/estimates.json");
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Formats nanoseconds readably.
pub(crate) fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints `a / b` for two benchmarks, with an at-most target if any.
pub(crate) fn ratio(label: &str, a: &str, b: &str, target: Option<f64>) {
    match (median_ns(a), median_ns(b)) {
        (Some(x), Some(y)) if y > 0.0 => {
            let r = x / y;
            let verdict = match target {
                Some(t) if r <= t => format!("  (target ≤ {t:.2}: met)"),
                Some(t) => format!("  (target ≤ {t:.2}: NOT met)"),
                None => String::new(),
            };
            println!(
                "{label:<48} {:>10} / {:>10} = {r:.3}{verdict}",
                human(x),
                human(y)
            );
        }
        _ => println!("{label:<48} (not measured in this run)"),
    }
}

/// The first quartile, the median and the third quartile of `v`.
pub(crate) fn quartiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let q = |quarters: usize| {
        v.get(v.len().saturating_sub(1) * quarters / 4)
            .copied()
            .unwrap_or(0.0)
    };
    (q(1), q(2), q(3))
}

/// A target for [`spread`]: at most (`≤`) or at least (`≥`) a value.
#[derive(Clone, Copy)]
pub(crate) enum Target {
    AtMost(f64),
    AtLeast(f64),
}

/// Prints the median of `v` with its quartiles, and whether the median
/// meets `target`.
pub(crate) fn spread(label: &str, v: Vec<f64>, unit: &str, target: Option<Target>) {
    if v.is_empty() {
        println!("{label:<58} (no data)");
        return;
    }
    let (q1, m, q3) = quartiles(v);
    let verdict = match target {
        Some(t) => {
            let (met, sign, t) = match t {
                Target::AtMost(t) => (m <= t, "≤", t),
                Target::AtLeast(t) => (m >= t, "≥", t),
            };
            format!(
                "  (target {sign} {t:.2}: {})",
                if met { "met" } else { "NOT met" }
            )
        }
        None => String::new(),
    };
    println!("{label:<58} {m:>8.3}{unit} [{q1:.3} – {q3:.3}]{verdict}");
}

impl Target {
    /// The bound, whichever way it points.
    pub(crate) fn value(self) -> f64 {
        match self {
            Self::AtMost(t) | Self::AtLeast(t) => t,
        }
    }
}
