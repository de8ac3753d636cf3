//! `scripts/check-prereqs.sh`, which `make run` and `make test` call before compiling: on a
//! machine without the build tools it must stop at once with the `apt-get` line that fixes it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-prereqs.sh")
}

/// A directory holding only the named tools (links to the real ones), to stand in for `PATH` on
/// a fresh machine that lacks everything else.
fn bare_path(tools: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for tool in tools {
        let found = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("bash");
        let real = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        if !real.is_empty() {
            std::os::unix::fs::symlink(&real, dir.path().join(tool)).expect("link");
        }
    }
    dir
}

fn run(path: &Path, what: &str) -> (i32, String) {
    let out = Command::new("/bin/bash")
        .arg(script())
        .arg(what)
        .env_clear()
        .env("PATH", path)
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .output()
        .expect("run the check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_machine_without_the_build_tools_gets_the_apt_line_at_once() {
    // Rust and Python are there, as on the fresh machine of the report; cmake, clang and
    // pkg-config are not. libclang is looked up on disk, so it may or may not be listed.
    let path = bare_path(&["cargo", "python3", "grep", "id", "ldconfig", "apt-get"]);
    let started = Instant::now();
    let (code, stderr) = run(path.path(), "build");
    let took = started.elapsed();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Missing system prerequisites"), "{stderr}");
    let apt = stderr
        .lines()
        .find(|l| l.contains("apt-get install"))
        .unwrap_or_else(|| panic!("no apt-get line in: {stderr}"));
    for package in ["cmake", "clang", "pkg-config"] {
        assert!(
            apt.split_whitespace().any(|w| w == package),
            "{package} missing from {apt}"
        );
    }
    // Test prerequisites are not asked for by `make run`.
    assert!(!apt.contains("chromium"), "{apt}");
    assert!(took.as_secs() < 10, "the check took {took:?}");
}

#[test]
fn the_test_target_also_asks_for_the_browser_and_services() {
    let path = bare_path(&["cargo", "python3", "grep", "id", "ldconfig", "apt-get"]);
    let (code, stderr) = run(path.path(), "test");
    assert_eq!(code, 1, "{stderr}");
    let apt = stderr
        .lines()
        .find(|l| l.contains("apt-get install"))
        .unwrap_or_default();
    for package in ["chromium", "nodejs", "postgresql", "redis-tools"] {
        assert!(apt.contains(package), "{package} missing from {apt}");
    }
}

#[test]
fn this_machine_passes_the_check() {
    // `make test` runs the same check first, so on any machine that reaches this test the
    // prerequisites are there and the check must say nothing.
    let out = Command::new("/bin/bash")
        .arg(script())
        .arg("test")
        .output()
        .expect("run the check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
}
