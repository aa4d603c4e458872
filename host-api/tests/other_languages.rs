//! The Python and JavaScript SDKs (`host-api/python`, `host-api/js`) run their own tests here,
//! so `cargo test` fails when either stops reading the shared analysis cases as this crate
//! does. Python needs the bindings componentize-py generates from the WIT; `cargo xtask test`
//! installs the pinned componentize-py under `target/componentize-py`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_javascript_sdk_passes_its_tests() {
    run(
        Command::new("node")
            .arg("--test")
            .arg(repo().join("host-api/js/penpal-sdk.test.js")),
        "node --test (install Node.js 18 or later)",
    );
}

#[test]
fn the_python_sdk_passes_its_tests() {
    let tool = repo().join("target/componentize-py/bin/componentize-py");
    assert!(
        tool.is_file(),
        "{} is missing: `cargo xtask test` installs it",
        tool.display()
    );
    let bindings = tempfile::tempdir().unwrap();
    run(
        Command::new(&tool)
            .arg("-d")
            .arg(repo().join("wit/v0.2"))
            .args(["-w", "tutor", "bindings"])
            .arg(bindings.path()),
        "componentize-py bindings",
    );
    let path = std::env::join_paths([bindings.path(), &repo().join("host-api/python")]).unwrap();
    run(
        Command::new("python3")
            .arg(repo().join("host-api/python/test_penpal_sdk.py"))
            .env("PYTHONPATH", path)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "the Python SDK's tests",
    );
}
