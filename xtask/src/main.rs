//! `cargo xtask`: the project's tasks, so that a fresh machine needs exactly two commands.
//!
//! - `cargo xtask run [-- serve flags]`: build the first-party plugins and run `penpal serve`.
//! - `cargo xtask test`: build every plugin, install the browser test's Chromium and npm
//!   packages and the API test's schemathesis, then formatting, lints and every test.
//! - `cargo xtask build-plugins`: build the first-party plugins and the test guests.
//! - `cargo xtask bench`: build the plugins and run the criterion benchmarks.
//! - `cargo xtask load`: concurrent socket conversations against a release `penpal serve`.
//!
//! Wasm guests live in their own workspaces (`plugins/`, `runtime/tests/guests/`) built for
//! `wasm32-wasip2` here rather than from a build script, so a host build never waits on them.

use std::path::{Path, PathBuf};
use std::process::Command;

mod rooms;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

const WASM_TARGET: &str = "wasm32-wasip2";

/// The guest workspaces and where their packages go, relative to the repository root.
const GUEST_WORKSPACES: &[(&str, &str)] = &[
    ("plugins", "target/plugins"),
    ("runtime/tests/guests", "target/test-plugins"),
    ("examples/tutor-rust", "target/example-plugins"),
];

/// The project's tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Penpal's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build the first-party plugins and run `penpal serve` (flags after `--` go to it).
    Run {
        /// Flags for `penpal serve`, such as `--listen 0.0.0.0:9000`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        serve: Vec<String>,
    },
    /// Build every plugin; check formatting, lints and room dependencies; run every test.
    Test,
    /// Check that the runtime's rooms depend downward only.
    Rooms,
    /// Build plugins/ and the test guests for wasm32-wasip2.
    BuildPlugins,
    /// Run the benchmarks.
    Bench,
    /// Socket conversations against a release `penpal serve` (flags after `--` go to the load
    /// tool; see `cargo xtask load -- --help`).
    Load {
        /// Flags for the load tool.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        load: Vec<String>,
    },
    /// Measure the outbox against a real SMTP server: sign-ups → verification mails accepted,
    /// beside the SMTP server's own rate, and reset answers for known and unknown addresses.
    MailLoad {
        /// Flags for the mail load tool.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        load: Vec<String>,
    },
    /// Measure payment webhooks: signed events verified, stored and applied per second, beside
    /// the same POST answered without verification in the same run.
    BillingLoad {
        /// Flags for the billing load tool.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        load: Vec<String>,
    },
    /// Measure the marketplace: publish on one server to a first call on another, and
    /// installs and upgrades while learners chat, beside the same with nobody chatting.
    MarketLoad {
        /// Flags for the marketplace load tool.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        load: Vec<String>,
    },
}

fn main() -> Result<()> {
    let root = root()?;
    match Cli::parse().task {
        Task::BuildPlugins => build_plugins(&root),
        Task::Run { serve } => {
            build_plugins(&root)?;
            let mut cmd = cargo();
            cmd.current_dir(&root)
                .args(["run", "--release", "-p", "penpal", "--", "serve"])
                .args(["--plugin-dir", "target/plugins"])
                .args(serve.iter().filter(|a| *a != "--"));
            run(&mut cmd)
        }
        Task::Test => test(&root),
        Task::Rooms => rooms::check(&root),
        Task::Load { load } => {
            build_plugins(&root)?;
            // The same build of the server as `run`, so neither rebuilds the other's stack.
            run(cargo().current_dir(&root).args([
                "build",
                "--release",
                "-p",
                "penpal",
                "--bin",
                "penpal",
            ]))?;
            run(cargo()
                .current_dir(&root)
                .args(["build", "--release", "-p", "penpal-load"]))?;
            run(Command::new(root.join("target/release/penpal-load"))
                .current_dir(&root)
                .args(load.iter().filter(|a| *a != "--")))
        }
        Task::MailLoad { load } => {
            build_plugins(&root)?;
            smtp_setup(&root)?;
            release_tool(&root, "penpal-mail-load", &load)
        }
        Task::BillingLoad { load } => {
            build_plugins(&root)?;
            release_tool(&root, "penpal-billing-load", &load)
        }
        Task::MarketLoad { load } => {
            build_plugins(&root)?;
            smtp_setup(&root)?;
            release_tool(&root, "penpal-market-load", &load)
        }
        Task::Bench => {
            build_plugins(&root)?;
            run(cargo().current_dir(&root).args(["bench", "-p", "penpal"]))
        }
    }
}

/// Builds the release server and the load tool `bin`, then runs the tool with `load`.
fn release_tool(root: &Path, bin: &str, load: &[String]) -> Result<()> {
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "penpal", "--bin", "penpal"]))?;
    run(cargo()
        .current_dir(root)
        .args(["build", "--release", "-p", "penpal-load", "--bin", bin]))?;
    run(Command::new(root.join("target/release").join(bin))
        .current_dir(root)
        .args(load.iter().filter(|a| *a != "--")))
}

fn root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Adds the wasm target when rustup does not have it yet.
fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32-wasip2 target")?;
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

fn build_plugins(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    let target_dir = root.join("target/wasm");
    for (workspace, out) in GUEST_WORKSPACES {
        let ws = root.join(workspace);
        run(cargo()
            .current_dir(&ws)
            .args(["build", "--release", "--workspace", "--target", WASM_TARGET])
            .arg("--target-dir")
            .arg(&target_dir))?;
        let out = root.join(out);
        std::fs::create_dir_all(&out)?;
        for krate in plugin_crates(&ws)? {
            package(&krate, &target_dir, &out)?;
        }
    }
    Ok(())
}

/// Crate directories in `ws` that carry a plugin manifest (the workspace itself, when it is one).
fn plugin_crates(ws: &Path) -> Result<Vec<PathBuf>> {
    let mut crates = Vec::new();
    if ws.join("penpal-plugin.toml").is_file() {
        crates.push(ws.to_path_buf());
    }
    for entry in std::fs::read_dir(ws)? {
        let dir = entry?.path();
        if dir.join("penpal-plugin.toml").is_file() && dir.join("Cargo.toml").is_file() {
            crates.push(dir);
        }
    }
    crates.sort();
    Ok(crates)
}

/// Copies a built crate's component and manifest into `out/<crate dir name>/`.
fn package(krate: &Path, target_dir: &Path, out: &Path) -> Result<()> {
    let cargo_toml = std::fs::read_to_string(krate.join("Cargo.toml"))?;
    let name = cargo_toml
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("name").map(|rest| {
                rest.trim_start_matches([' ', '='])
                    .trim_matches('"')
                    .to_string()
            })
        })
        .with_context(|| format!("{} has no package name", krate.display()))?;
    let wasm = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let dir_name = krate.file_name().context("crate directory has no name")?;
    let dest = out.join(dir_name);
    std::fs::create_dir_all(&dest)?;
    std::fs::copy(
        krate.join("penpal-plugin.toml"),
        dest.join("penpal-plugin.toml"),
    )?;
    std::fs::copy(&wasm, dest.join("plugin.wasm"))
        .with_context(|| format!("{} was not built", wasm.display()))?;
    Ok(())
}

fn test(root: &Path) -> Result<()> {
    rooms::check(root)?;
    build_plugins(root)?;
    run(cargo().current_dir(root).args(["fmt", "--all", "--check"]))?;
    for (workspace, _) in GUEST_WORKSPACES {
        run(cargo()
            .current_dir(root.join(workspace))
            .args(["fmt", "--all", "--check"]))?;
    }
    run(cargo().current_dir(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for (workspace, _) in GUEST_WORKSPACES {
        run(cargo()
            .current_dir(root.join(workspace))
            .args([
                "clippy",
                "--workspace",
                "--release",
                "--target",
                WASM_TARGET,
            ])
            .arg("--target-dir")
            .arg(root.join("target/wasm"))
            .args(["--", "-D", "warnings"]))?;
    }
    browser_test_setup(root)?;
    prometheus_setup()?;
    schemathesis_setup(root)?;
    smtp_setup(root)?;
    componentize_py_setup(root)?;
    run(cargo().current_dir(root).args(["test", "--workspace"]))
}

/// The schemathesis version the API test runs (`runtime/tests/integration/schemathesis.rs`).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The SMTP server the mail tests deliver to (`runtime/tests/smtp/sink.py`).
const AIOSMTPD: &str = "aiosmtpd==1.4.6";

fn schemathesis_setup(root: &Path) -> Result<()> {
    pip_tool(root, "schemathesis", "st", SCHEMATHESIS, "the API test")
}

fn smtp_setup(root: &Path) -> Result<()> {
    pip_tool(root, "smtp", "aiosmtpd", AIOSMTPD, "the mail tests")
}

/// The componentize-py the Python plugin template pins (`host-api/python/requirements.txt`),
/// for the test that builds it.
fn componentize_py_setup(root: &Path) -> Result<()> {
    let pins = std::fs::read_to_string(root.join("host-api/python/requirements.txt"))?;
    let pin = pins
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("componentize-py=="))
        .context("host-api/python/requirements.txt pins no componentize-py")?;
    pip_tool(
        root,
        "componentize-py",
        "componentize-py",
        pin,
        "the Python template test",
    )
}

/// Installs `package` (pinned) from PyPI into a virtualenv at `target/{dir}`, once: done when
/// its `bin/{program}` exists.
fn pip_tool(root: &Path, dir: &str, program: &str, package: &str, for_what: &str) -> Result<()> {
    let venv = root.join("target").join(dir);
    if venv.join("bin").join(program).is_file() {
        return Ok(());
    }
    eprintln!("xtask: installing {package} for {for_what}");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .with_context(|| format!("{for_what} need Python 3 with venv, to install {package}"))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]))
    .with_context(|| format!("could not install {package} from PyPI"))
}

/// What the browser test needs beside Rust: Debian's Chromium and the npm packages that
/// drive it (`playwright-core`, `axe-core`, pinned by `runtime/tests/web/package-lock.json`).
/// Installs Debian's `package` when `binary` is missing (as root, or through `sudo -n`).
fn apt_install(package: &str, binary: &str, why: &str) -> Result<()> {
    if Path::new(binary).exists() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian's {package} {why}");
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        cmd
    };
    run(&mut apt(&["update", "-q"]))?;
    run(&mut apt(&[
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        package,
    ]))
    .with_context(|| format!("install Debian's {package} ({why})"))
}

/// Debian's Prometheus, which the metrics test starts to scrape a real server.
fn prometheus_setup() -> Result<()> {
    apt_install(
        "prometheus",
        "/usr/bin/prometheus",
        "for the metrics test (runtime/tests/integration/observability.rs)",
    )
}

fn browser_test_setup(root: &Path) -> Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    apt_install(
        "chromium",
        &chromium,
        "for the browser test (or set CHROMIUM)",
    )?;
    run(Command::new("npm")
        .current_dir(root.join("runtime/tests/web"))
        .args(["ci", "--no-audit", "--no-fund"]))
    .context("the browser test needs Node.js and npm (to install playwright-core and axe-core)")?;
    run(Command::new("npm")
        .current_dir(root.join("runtime/tests/asyncapi"))
        .args(["ci", "--no-audit", "--no-fund"]))
    .context("the protocol test needs Node.js and npm (to install @asyncapi/parser and ajv)")
}
