//! The load tool explains itself and its mistakes instead of panicking.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::process::Command;

fn load(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_penpal-load"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_every_flag_and_bad_values_are_named() {
    let (ok, out, err) = load(&["--help"]);
    assert!(ok, "{err}");
    for flag in [
        "--conversations",
        "--seconds",
        "--idle",
        "--penpal",
        "--think-ms",
    ] {
        assert!(out.contains(flag), "{out}");
    }
    let (ok, _, err) = load(&["--think-ms", "soon"]);
    assert!(!ok);
    assert!(
        err.contains("`soon` is not a number of milliseconds"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (ok, _, err) = load(&["--turbo"]);
    assert!(!ok);
    assert!(err.contains("unexpected argument '--turbo'"), "{err}");
}
