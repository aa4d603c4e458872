//! The web app in a real browser: Debian's Chromium, driven by `playwright-core` from
//! `runtime/tests/web/` (installed by `cargo xtask test`), against a real server with the
//! first-party plugins and the scripted model streaming over HTTP. The browser side lives in
//! `web/journey.mjs`; this test starts the server, runs it, and fails with its output.
//!
//! Screenshots of every page, desktop and phone, land in `target/web-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use penpal::llm::scripted::{self, Script};

/// Where Chromium is, as the Debian package installs it unless `CHROMIUM` says otherwise.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

#[actix_rt::test]
async fn a_visitor_becomes_a_learner_in_the_browser() {
    let dir = repo().join("runtime/tests/web");
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && dir.join("node_modules/axe-core").is_dir(),
        "the browser test's npm packages are missing: run `cargo xtask test` (it runs `npm ci` in {})",
        dir.display()
    );
    assert!(
        std::path::Path::new(&chromium()).exists(),
        "Chromium is missing at {}: run `cargo xtask test` (it installs Debian's `chromium`) or set CHROMIUM",
        chromium()
    );

    // A model that streams visibly: a short pause between chunks, as a real one has.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let llm = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let script = Script {
            first_byte: Duration::from_millis(50),
            between_chunks: Duration::from_millis(40),
        };
        axum::serve(listener, scripted::router(script)).await
    });
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), Some(llm))).await;

    let shots = repo().join("target/web-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let url = server.url("");
    let out = within(
        600,
        "the browser journey",
        tokio::task::spawn_blocking(move || {
            Command::new("node")
                .arg("journey.mjs")
                .current_dir(&dir)
                .env("PENPAL_URL", url)
                .env("CHROMIUM", chromium())
                .env("SCREENSHOTS", &shots)
                .output()
                .expect("node runs (Node.js 20 or later is needed)")
        }),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    server.stop().await;
    assert!(out.status.success(), "the browser journey failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("journey complete"), "{stdout}");
}
