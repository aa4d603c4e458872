//! Snapshots of the API's two documents, `/openapi.json` and `/asyncapi.json`, as the server
//! serves them: any change to a route, a schema or an event shows in review as a diff of
//! `runtime/tests/snapshots/`. After an intended change, run with `PENPAL_BLESS=1` to write
//! the new snapshots, then read the diff.

use crate::common::*;

/// Compares `actual` with the snapshot `name`, or writes it when blessing.
fn snapshot(name: &str, actual: &serde_json::Value) -> Option<String> {
    let path = repo().join("runtime/tests/snapshots").join(name);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("PENPAL_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    (expected != text).then(|| {
        let first = expected
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(text.lines().count()));
        format!(
            "{} differs from what the server serves, from line {}:\n  snapshot: {}\n  served:   {}\n\
             If the change is intended, run with PENPAL_BLESS=1 and review the diff.",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            text.lines().nth(first).unwrap_or("<end>")
        )
    })
}

#[actix_rt::test]
async fn the_api_documents_match_their_snapshots() {
    let data = tempfile::tempdir().unwrap();
    let server = start(serve_args(data.path(), None)).await;
    let mut problems = Vec::new();
    for (path, file) in [
        ("/openapi.json", "openapi.json"),
        ("/asyncapi.json", "asyncapi.json"),
    ] {
        let (status, doc) = get(server.addr, path).await;
        assert_eq!(status, 200, "{path}");
        problems.extend(snapshot(file, &doc));
    }
    server.stop().await;
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
