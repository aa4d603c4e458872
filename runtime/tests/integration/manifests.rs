//! Manifest fixtures: each `tests/manifests/NAME.toml` sits beside the JSON it must parse to
//! (`NAME.json`) or the error it must be rejected with (`NAME.err`). Run with
//! `PENPAL_BLESS=1` to write the expected files after an intended change, then review the diff.

use std::path::Path;

use penpal::plugins::Manifest;

#[test]
fn manifests_parse_or_fail_as_recorded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests");
    let bless = std::env::var_os("PENPAL_BLESS").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for toml in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
    {
        cases += 1;
        let text = std::fs::read_to_string(toml).unwrap();
        let (actual, ext) = match Manifest::parse(&text) {
            Ok(m) => (serde_json::to_string_pretty(&m).unwrap() + "\n", "json"),
            Err(e) => (e.to_string() + "\n", "err"),
        };
        let expected_path = toml.with_extension(ext);
        let other = toml.with_extension(if ext == "json" { "err" } else { "json" });
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            let _ = std::fs::remove_file(&other);
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{}:\n  expected: {expected}  actual:   {actual}",
                toml.display()
            )),
            Err(_) => failures.push(format!(
                "{}: expected {} to exist (actual {ext}: {actual})",
                toml.display(),
                other.display()
            )),
        }
    }
    assert!(cases >= 20, "only {cases} manifest fixtures found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
