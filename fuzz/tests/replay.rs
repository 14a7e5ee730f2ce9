//! Replays every committed seed and regression through the fuzz functions,
//! on stable Rust: `cargo test --manifest-path fuzz/Cargo.toml`.

use std::fs;
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("signature_header", tower_webhook_fuzz::signature_header),
    ("timestamp", tower_webhook_fuzz::timestamp),
    ("secret", tower_webhook_fuzz::secret),
    ("verify", tower_webhook_fuzz::verify),
    ("payload", tower_webhook_fuzz::payload),
    ("forwarded", tower_webhook_fuzz::forwarded),
];

/// Runs every file of `<dir>/<target>/` through its target; returns how many.
fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut ran = 0;
    for (name, run) in TARGETS {
        let Ok(entries) = fs::read_dir(root.join(name)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for file in files {
            if file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let data = fs::read(&file).expect("seed is readable");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} fails", file.display());
            ran += 1;
        }
    }
    ran
}

#[test]
fn every_seed_passes_its_target() {
    let ran = replay("seeds");
    assert!(ran >= 100, "only {ran} seeds found");
}

#[test]
fn every_kept_regression_passes_its_target() {
    replay("regressions");
}
