//! The `penpal` command line as an operator or a plugin author uses it.

use crate::common::*;

#[test]
fn check_describes_a_good_plugin() {
    let dir = plugin("roleplay");
    let (ok, out, err) = penpal(&["plugin", "check", dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with("roleplay 0.1.0 — tutor plugin for penpal:plugin@0.2.0, by penpal"),
        "{out}"
    );
    assert!(out.contains("modes      role-play"), "{out}");
    assert!(out.contains("levels     A1, A2, B1, B2, C1, C2"), "{out}");
    assert!(
        out.contains("asks for   nothing beyond logging and settings"),
        "{out}"
    );
    assert!(
        out.contains("exports    the tutor world, penpal:plugin@0.2.0"),
        "{out}"
    );
    assert!(out.contains("wit        0.2 (current)"), "{out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");

    // The .wasm itself, with the manifest beside it, works too.
    let wasm = dir.join("plugin.wasm");
    let (ok, out, _) = penpal(&["plugin", "check", wasm.to_str().unwrap(), "--json"]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["report"]["world"][0], "tutor");
}

#[test]
fn check_rejects_a_component_that_is_not_what_its_manifest_says() {
    let (ok, out, _) = penpal(&["plugin", "check", guest("notutor").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        out.contains("error: the manifest says kind = \"tutor\", but the component implements the notifier world"),
        "{out}"
    );
}

#[test]
fn check_refuses_a_wrong_world_before_compiling_and_keeps_what_it_compiled() {
    let cache = tempfile::tempdir().unwrap();
    let compiled = cache.path().join("penpal").join("compiled");
    let check = |pkg: std::path::PathBuf| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_penpal"))
            .args(["plugin", "check", pkg.to_str().unwrap()])
            .env("PENPAL_LOG", "warn")
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let files = || std::fs::read_dir(&compiled).map_or(0, |d| d.count());
    let (ok, out) = check(guest("notutor"));
    assert!(
        !ok && out.contains("implements the notifier world"),
        "{out}"
    );
    assert_eq!(
        files(),
        0,
        "refused from the component's exports, nothing compiled"
    );
    let (ok, out) = check(plugin("roleplay"));
    assert!(ok, "{out}");
    assert!(out.contains("memory     starts at "), "{out}");
    assert!(out.contains("(calls may use up to 64 MiB)"), "{out}");
    assert!(
        files() > 0,
        "the compiled component is kept for the next check"
    );
}

#[test]
fn check_accepts_every_kind_and_says_which_wit_it_targets() {
    let cases = [
        (
            "payer",
            "payment-provider",
            "provider   Test payments\n  currencies EUR, USD",
        ),
        (
            "courier",
            "notifier",
            "notifier   Test courier (push channel)",
        ),
        ("campus", "lms", "lms        Campus LMS (platform `campus`)"),
        ("echo", "tutor", "tutor      echo"),
    ];
    for (name, kind, section) in cases {
        let (ok, out, err) = penpal(&["plugin", "check", guest(name).to_str().unwrap()]);
        assert!(ok, "{name}: {out}{err}");
        assert!(out.contains(section), "{name}: {out}");
        assert!(
            out.contains(&format!("exports    the {kind} world, penpal:plugin@0.2.0")),
            "{name}: {out}"
        );
        assert!(out.contains("wit        0.2 (current)"), "{name}: {out}");
    }

    // A tutor built against 0.1 still checks, and says it is on the older line.
    let (ok, out, err) = penpal(&["plugin", "check", guest("legacy-tutor").to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("exports    the tutor world, penpal:plugin@0.1.0"),
        "{out}"
    );
    assert!(
        out.contains("wit        0.1: still runs here; the current SDK targets 0.2"),
        "{out}"
    );
    assert!(out.contains("penpal:plugin/log@0.1.0"), "{out}");
}

#[test]
fn install_takes_every_kind() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    for (name, grants, shown) in [
        (
            "payer",
            vec!["--grant", "secret:webhook_secret"],
            "installed payer 1.0.0 (secrets: webhook_secret)",
        ),
        (
            "courier",
            vec!["--grant", "kv"],
            "installed courier 1.0.0 (kv)",
        ),
        (
            "campus",
            vec![],
            "installed campus 1.0.0 (nothing beyond logging and settings)",
        ),
        (
            "legacy-tutor",
            vec![],
            "installed legacy-tutor 0.1.0 (nothing beyond logging and settings)",
        ),
    ] {
        let path = guest(name);
        let mut args = vec![
            "plugin",
            "install",
            path.to_str().unwrap(),
            "--data-dir",
            data_dir,
        ];
        args.extend(grants);
        let (ok, out, err) = penpal(&args);
        assert!(ok, "{name}: {out}{err}");
        assert!(out.contains(shown), "{name}: {out}");
    }
    let (ok, out, err) = penpal(&["plugins", "--data-dir", data_dir]);
    assert!(ok, "{err}");
    let kind_of = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {out}"))
            .split_whitespace()
            .nth(2)
            .unwrap()
            .to_string()
    };
    assert_eq!(kind_of("payer"), "payment-provider");
    assert_eq!(kind_of("courier"), "notifier");
    assert_eq!(kind_of("campus"), "lms");
    assert_eq!(kind_of("legacy-tutor"), "tutor");

    // The kind a component really exports is checked at install, too.
    let notutor = guest("notutor");
    let (ok, _, err) = penpal(&[
        "plugin",
        "install",
        notutor.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    assert!(!ok);
    assert!(
        err.contains(
            "the manifest says kind = \"tutor\", but the component implements the notifier world"
        ),
        "{err}"
    );
}

#[test]
fn check_names_the_bad_field_of_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(plugin("tutor").join("penpal-plugin.toml"))
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"one\"");
    std::fs::write(dir.path().join("penpal-plugin.toml"), manifest).unwrap();
    std::fs::copy(
        plugin("tutor").join("plugin.wasm"),
        dir.path().join("plugin.wasm"),
    )
    .unwrap();
    let (ok, _, err) = penpal(&["plugin", "check", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("`plugin.version`"), "{err}");

    let (ok, _, err) = penpal(&["plugin", "check", "/nonexistent/plugin"]);
    assert!(!ok);
    assert!(
        err.contains("no penpal-plugin.toml at /nonexistent/plugin"),
        "{err}"
    );
}

#[test]
fn install_grants_only_what_the_plugin_asks_for() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let snoop = guest("snoop");
    let snoop = snoop.to_str().unwrap();

    let (ok, _, err) = penpal(&[
        "plugin",
        "install",
        snoop,
        "--grant",
        "secret:other",
        "--data-dir",
        data_dir,
    ]);
    assert!(!ok);
    assert!(err.contains("grant only what it asks for"), "{err}");
    let (ok, _, err) = penpal(&[
        "plugin",
        "install",
        snoop,
        "--grant",
        "filesystem",
        "--data-dir",
        data_dir,
    ]);
    assert!(!ok);
    assert!(err.contains("unknown grant `filesystem`"), "{err}");

    let (ok, out, err) = penpal(&[
        "plugin",
        "install",
        snoop,
        "--grant",
        "kv",
        "--grant",
        "secret:api_key",
        "--data-dir",
        data_dir,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("installed snoop 0.1.0 (kv; secrets: api_key)"),
        "{out}"
    );
    let (ok, out, _) = penpal(&[
        "plugin",
        "install",
        snoop,
        "--grant",
        "kv",
        "--data-dir",
        data_dir,
    ]);
    assert!(ok);
    assert!(out.contains("snoop 0.1.0 is already installed"), "{out}");

    let tutors = repo().join("target/plugins");
    let (ok, out, err) = penpal(&[
        "plugins",
        "--data-dir",
        data_dir,
        "--plugin-dir",
        tutors.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{out}");
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(&row("snoop")[..4], ["snoop", "0.1.0", "tutor", "ok"]);
    assert!(out.contains("kv; secrets: api_key"));
    for name in ["tutor", "partner", "roleplay"] {
        assert_eq!(&row(name)[..4], [name, "0.1.0", "tutor", "ok"]);
    }
}

#[test]
fn the_third_party_example_passes_check() {
    let example = repo().join("target/example-plugins/tutor-rust");
    assert!(
        example.join("plugin.wasm").is_file(),
        "run `cargo xtask build-plugins`"
    );
    let (ok, out, err) = penpal(&["plugin", "check", example.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("socrates 0.1.0 — tutor plugin"), "{out}");
    assert!(out.contains("asks for   kv"), "{out}");
    assert!(out.contains("penpal:plugin/kv@0.2.0"), "{out}");
}

/// A copy of package `name` in `dir` (signing writes beside the manifest).
fn package_copy(name: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let to = dir.join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(plugin(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
    to
}

#[test]
fn an_author_signs_a_package_and_any_change_or_other_key_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("me.key");
    let key_arg = key.to_str().unwrap();
    let (ok, out, err) = penpal(&["key", "generate", "--out", key_arg]);
    assert!(ok, "{out}{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key   "))
        .unwrap()
        .to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is its owner's only");
    }
    let (ok, _, err) = penpal(&["key", "generate", "--out", key_arg]);
    assert!(!ok);
    assert!(err.contains("penpal never overwrites a key"), "{err}");

    let pkg = package_copy("roleplay", dir.path());
    let pkg_arg = pkg.to_str().unwrap();
    let (ok, _, err) = penpal(&["plugin", "verify", pkg_arg, "--public-key", &public]);
    assert!(!ok);
    assert!(
        err.contains("sign the package with `penpal plugin sign`"),
        "{err}"
    );
    let (ok, out, err) = penpal(&["plugin", "sign", pkg_arg, "--key", key_arg]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("signed roleplay 0.1.0 with key "), "{out}");
    assert!(out.trim_end().ends_with("roleplay-0.1.0.penpal"), "{out}");
    assert!(pkg.join("penpal-plugin.sig").exists());
    let (ok, out, err) = penpal(&["plugin", "verify", pkg_arg, "--public-key", &public]);
    assert!(ok, "{out}{err}");

    // The archive a registry takes verifies too; one changed byte inside it does not.
    let archive = pkg.join("roleplay-0.1.0.penpal");
    let (ok, out, err) = penpal(&[
        "plugin",
        "verify",
        archive.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(ok, "{out}{err}");
    let mut unpacked =
        penpal::marketplace::archive::unpack(&std::fs::read(&archive).unwrap()).unwrap();
    assert_eq!(
        unpacked.component.1,
        std::fs::read(pkg.join("plugin.wasm")).unwrap()
    );
    let at = unpacked.component.1.len() / 2;
    unpacked.component.1[at] ^= 1;
    let forged = dir.path().join("forged.penpal");
    std::fs::write(
        &forged,
        penpal::marketplace::archive::pack(&unpacked).unwrap(),
    )
    .unwrap();
    let (ok, _, err) = penpal(&[
        "plugin",
        "verify",
        forged.to_str().unwrap(),
        "--public-key",
        &public,
    ]);
    assert!(!ok);
    assert!(err.contains("changed after it was signed"), "{err}");

    // Another publisher's key.
    let other = dir.path().join("other.key");
    let (_, other_out, _) = penpal(&["key", "generate", "--out", other.to_str().unwrap()]);
    let other_public = other_out
        .lines()
        .find_map(|l| l.strip_prefix("public key   "))
        .unwrap()
        .to_string();
    let (ok, _, err) = penpal(&["plugin", "verify", pkg_arg, "--public-key", &other_public]);
    assert!(!ok);
    assert!(
        err.contains("sign it with the key registered for this publisher"),
        "{err}"
    );

    // One byte of the component, or of the manifest, changed after signing.
    let wasm = pkg.join("plugin.wasm");
    let original = std::fs::read(&wasm).unwrap();
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    std::fs::write(&wasm, &changed).unwrap();
    let (ok, _, err) = penpal(&["plugin", "verify", pkg_arg, "--public-key", &public]);
    assert!(!ok);
    assert!(err.contains("changed after it was signed"), "{err}");
    std::fs::write(&wasm, &original).unwrap();
    let manifest = pkg.join("penpal-plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("description = \"", "description = \"Now ", 1),
    )
    .unwrap();
    let (ok, _, err) = penpal(&["plugin", "verify", pkg_arg, "--public-key", &public]);
    assert!(!ok);
    assert!(err.contains("changed after it was signed"), "{err}");

    // A key file that is not one says what to give.
    let (ok, _, err) = penpal(&[
        "plugin",
        "sign",
        pkg_arg,
        "--key",
        manifest.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("give the file `penpal key generate` wrote"),
        "{err}"
    );
}
