//! The marketplace's registry, end to end over HTTP with real components: an account verifies
//! its address, becomes a publisher, registers a key, and publishes packages signed and packed
//! the way `penpal plugin sign` does; every tampered, mislabelled or misplaced package is
//! refused with what to fix, and nothing of it is stored.

use crate::common::*;
use crate::schools::{Client, account};
use penpal::marketplace::archive::{self, Archive};
use penpal::marketplace::signature::SigningKey;
use serde_json::{Value, json};

/// Appends `toml` to a test server's operator file.
fn configure(args: &mut penpal::config::ServeArgs, toml: &str) {
    let file = args.plugins.config.clone().unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n{toml}\n")).unwrap();
}

/// A server in `dir` whose operator lists `registry` (on loopback, which it may reach).
async fn installer(
    dir: &std::path::Path,
    registry: &str,
) -> (Running, penpal::store::Db, Sink, Client) {
    crate::schools::server_with(dir, 300, |args| {
        args.plugins.plugin_allow_networks = vec!["127.0.0.0/8".parse().unwrap()];
        configure(
            args,
            &format!("[marketplace]\nregistries = [\"{registry}\"]"),
        );
    })
    .await
}

/// Opens a `mode` conversation in French with `personality` and sends `text`; answers the reply.
async fn chat_once(learner: &Client, personality: &str, mode: &str, text: &str) -> Value {
    let (status, conv) = learner
        .call(
            "POST",
            "/v1/conversations",
            Some(json!({"personality": personality, "mode": mode, "language": "fr"})),
        )
        .await;
    assert_eq!(status, 201, "{conv}");
    let (status, reply) = learner
        .call(
            "POST",
            &format!(
                "/v1/conversations/{}/messages",
                conv["id"].as_str().unwrap()
            ),
            Some(json!({"text": text})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    reply
}

/// Signs up `email`, follows the confirmation mail, and makes the account the publisher `slug`.
async fn publisher(base: &str, sink: &Sink, email: &str, slug: &str) -> Client {
    let me = verified(base, sink, email).await;
    let (status, body) = me
        .call(
            "POST",
            "/v1/publishers",
            Some(json!({"slug": slug, "name": "Ada's tutors"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["slug"], slug);
    me
}

/// Signs up `email` and follows the confirmation mail; an unverified account cannot publish.
pub(crate) async fn verified(base: &str, sink: &Sink, email: &str) -> Client {
    let me = account(base, email).await;
    let (status, body) = me
        .call(
            "POST",
            "/v1/publishers",
            Some(json!({"slug": "x-unverified", "name": "Ada's tutors"})),
        )
        .await;
    assert_eq!(status, 403, "an unverified address cannot publish: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("verify your email"),
        "{body}"
    );
    let text = mail(sink, email, "Confirm your email address").await;
    let token = text
        .split_whitespace()
        .find_map(|w| w.split("verify-email#token=").nth(1))
        .unwrap()
        .to_string();
    let (status, _) = me
        .call(
            "POST",
            "/v1/auth/verify-email",
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(status, 200);
    me
}

/// Registers a new key for `slug` and answers it.
async fn key(me: &Client, slug: &str) -> SigningKey {
    let key = SigningKey::generate().unwrap();
    let (status, body) = me
        .call(
            "POST",
            &format!("/v1/publishers/{slug}/keys"),
            Some(json!({"public_key": key.public().to_base64(), "label": "laptop"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["fingerprint"], key.public().fingerprint());
    key
}

/// The first-party `plugin`'s manifest renamed `name` at `version` for `publisher`, and its
/// component.
pub(crate) fn package(
    plugin: &str,
    name: &str,
    version: &str,
    publisher: &str,
) -> (String, Vec<u8>) {
    package_at(&crate::common::plugin(plugin), name, version, publisher)
}

/// The package in `dir` with its manifest's `[plugin]` name, version and publisher rewritten,
/// and its component.
fn package_at(
    dir: &std::path::Path,
    name: &str,
    version: &str,
    publisher: &str,
) -> (String, Vec<u8>) {
    let manifest = std::fs::read_to_string(dir.join("penpal-plugin.toml")).unwrap();
    let mut done = [false; 3];
    let manifest: Vec<String> = manifest
        .lines()
        .map(|line| {
            for (i, (key, value)) in [
                ("name", name),
                ("version", version),
                ("publisher", publisher),
            ]
            .into_iter()
            .enumerate()
            {
                if !done[i] && line.starts_with(&format!("{key} = ")) {
                    done[i] = true;
                    return format!("{key} = \"{value}\"");
                }
            }
            line.to_string()
        })
        .collect();
    (
        manifest.join("\n") + "\n",
        std::fs::read(dir.join("plugin.wasm")).unwrap(),
    )
}

/// The archive `penpal plugin sign` makes of `manifest` and `wasm` with `key`.
fn signed(manifest: &str, wasm: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(manifest.as_bytes(), wasm).to_toml();
    pack(manifest.as_bytes(), wasm, sig.as_bytes())
}

fn pack(manifest: &[u8], wasm: &[u8], sig: &[u8]) -> Vec<u8> {
    archive::pack(&Archive {
        manifest: manifest.to_vec(),
        component: ("plugin.wasm".into(), wasm.to_vec()),
        signature: sig.to_vec(),
        readme: Some("# A tutor\n\nPatient.".into()),
        screenshots: vec![("chat.png".into(), b"\x89PNG\r\n\x1a\nnot really".to_vec())],
    })
    .unwrap()
}

async fn upload(me: &Client, bytes: Vec<u8>) -> (u16, Value) {
    let resp = http()
        .post(format!("{}/v1/marketplace/packages", me.base))
        .bearer_auth(&me.token)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How many versions and blobs the registry holds.
async fn stored(db: &penpal::store::Db) -> (usize, usize) {
    let versions: Vec<Value> = db
        .rows("SELECT id FROM package_version", json!({}))
        .await
        .unwrap();
    let blobs: Vec<Value> = db.rows("SELECT id FROM blob", json!({})).await.unwrap();
    (versions.len(), blobs.len())
}

/// Refused with `status`, `field` and a message holding `says`.
fn refused(got: (u16, Value), status: u16, field: &str, says: &str) {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    if !field.is_empty() {
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "expected {says:?} in {body}");
}

#[actix_rt::test]
async fn a_publisher_signs_up_registers_a_key_and_publishes_versions() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, _ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;

    // One publisher per account; a taken or malformed name says so.
    let (status, body) = ada
        .call(
            "POST",
            "/v1/publishers",
            Some(json!({"slug": "ada-two", "name": "Again"})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let bob = account(&base, "bob@example.com").await;
    let (status, body) = bob
        .call(
            "POST",
            "/v1/publishers",
            Some(json!({"slug": "Bob!", "name": "Bob"})),
        )
        .await;
    refused((status, body), 422, "slug", "such as");

    // Keys: registered once, shown to anyone on the publisher's page.
    let key = key(&ada, "ada").await;
    let (status, body) = ada
        .call(
            "POST",
            "/v1/publishers/ada/keys",
            Some(json!({"public_key": key.public().to_base64(), "label": "again"})),
        )
        .await;
    assert_eq!(status, 409, "a key registers once: {body}");
    let (status, body) = ada
        .call(
            "POST",
            "/v1/publishers/ada/keys",
            Some(json!({"public_key": "bm90IGEga2V5", "label": "junk"})),
        )
        .await;
    refused((status, body), 422, "public_key", "32 bytes");
    let (status, page) = get(server.addr, "/v1/publishers/ada").await;
    assert_eq!(status, 200);
    assert_eq!(page["name"], "Ada's tutors");
    assert_eq!(page["keys"][0]["public_key"], key.public().to_base64());
    assert_eq!(page["keys"][0]["revoked_at"], Value::Null);

    // Publishing: an account that is no publisher cannot.
    let (manifest, wasm) = package("tutor", "ada-camille", "1.0.0", "ada");
    refused(
        upload(&bob, signed(&manifest, &wasm, &key)).await,
        403,
        "",
        "become a publisher",
    );
    let (status, v1) = upload(&ada, signed(&manifest, &wasm, &key)).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["name"], "ada-camille");
    assert_eq!(v1["version"], "1.0.0");
    assert_eq!(v1["kind"], "tutor");
    assert_eq!(v1["publisher"], "ada");
    assert_eq!(v1["signed_by"], key.public().fingerprint());
    let archive_bytes = signed(&manifest, &wasm, &key);
    assert_eq!(
        v1["digest"],
        penpal::marketplace::blobs::digest(&archive_bytes),
        "content is named by the archive's SHA-256 (packing is deterministic)"
    );
    // What is stored is exactly what was uploaded.
    let kept = penpal::marketplace::blobs::get(&db, v1["digest"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(kept.as_deref(), Some(archive_bytes.as_slice()));

    // Versions only go up, and never change.
    refused(
        upload(&ada, signed(&manifest, &wasm, &key)).await,
        409,
        "",
        "published already",
    );
    let (m2, _) = package("tutor", "ada-camille", "1.1.0", "ada");
    let (status, body) = upload(&ada, signed(&m2, &wasm, &key)).await;
    assert_eq!(status, 201, "{body}");
    let (m_old, _) = package("tutor", "ada-camille", "1.0.5", "ada");
    refused(
        upload(&ada, signed(&m_old, &wasm, &key)).await,
        409,
        "",
        "not newer than 1.1.0",
    );
    let (m_build, _) = package("tutor", "ada-camille", "1.1.0+rebuild", "ada");
    refused(
        upload(&ada, signed(&m_build, &wasm, &key)).await,
        409,
        "",
        "published already",
    );
    assert_eq!(stored(&db).await.0, 2);

    // Rotation: a new key publishes; the revoked one no longer does.
    let new_key = crate::marketplace::key(&ada, "ada").await;
    let (status, _) = ada
        .call(
            "DELETE",
            &format!("/v1/publishers/ada/keys/{}", key.public().fingerprint()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (m3, _) = package("tutor", "ada-camille", "1.2.0", "ada");
    refused(
        upload(&ada, signed(&m3, &wasm, &key)).await,
        422,
        "signature",
        "revoked",
    );
    let (status, body) = upload(&ada, signed(&m3, &wasm, &new_key)).await;
    assert_eq!(status, 201, "{body}");
    let (_, page) = get(server.addr, "/v1/publishers/ada").await;
    let revoked: Vec<&Value> = page["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["revoked_at"].is_null())
        .collect();
    assert_eq!(revoked.len(), 1, "{page}");
    assert_eq!(revoked[0]["fingerprint"], key.public().fingerprint());
    let (status, me) = ada.call("GET", "/v1/me/publisher", None).await;
    assert_eq!((status, &me["slug"]), (200, &json!("ada")));
    server.stop().await;
}

#[actix_rt::test]
async fn every_tampered_mislabelled_or_misplaced_package_is_refused_and_nothing_is_stored() {
    let data = tempfile::tempdir().unwrap();
    let (server, db, sink, _ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let grace = publisher(&base, &sink, "grace@example.com", "grace").await;
    let key = key(&ada, "ada").await;
    let graces_key = crate::marketplace::key(&grace, "grace").await;
    let (manifest, wasm) = package("tutor", "ada-camille", "1.0.0", "ada");

    // A byte of the component, or of the manifest, changed after signing.
    let sig = key.sign(manifest.as_bytes(), &wasm).to_toml();
    let mut changed = wasm.clone();
    let at = changed.len() / 2;
    changed[at] ^= 1;
    refused(
        upload(&ada, pack(manifest.as_bytes(), &changed, sig.as_bytes())).await,
        422,
        "signature",
        "changed after it was signed",
    );
    let tampered = manifest.replacen("a patient tutor", "a free tutor", 1);
    assert_ne!(tampered, manifest);
    refused(
        upload(&ada, pack(tampered.as_bytes(), &wasm, sig.as_bytes())).await,
        422,
        "signature",
        "changed after it was signed",
    );
    // Signed by a key never registered, or by another publisher's.
    let stranger = SigningKey::generate().unwrap();
    refused(
        upload(&ada, signed(&manifest, &wasm, &stranger)).await,
        422,
        "signature",
        "not registered to this publisher",
    );
    refused(
        upload(&ada, signed(&manifest, &wasm, &graces_key)).await,
        422,
        "signature",
        "not registered to this publisher",
    );
    // A manifest naming another publisher, even signed by that publisher's own key.
    let (as_grace, _) = package("tutor", "ada-camille", "1.0.0", "grace");
    refused(
        upload(&ada, signed(&as_grace, &wasm, &key)).await,
        422,
        "manifest",
        "publishes as \"ada\"",
    );
    // A manifest lying about its kind: a tutor component declared a notifier.
    let liar = format!(
        "{}\n[notifier]\ndisplay-name = \"Not a notifier\"\nchannel = \"email\"\n",
        manifest.split("[tutor]").next().unwrap().replacen(
            "kind = \"tutor\"",
            "kind = \"notifier\"",
            1
        )
    );
    refused(
        upload(&ada, signed(&liar, &wasm, &key)).await,
        422,
        "component",
        "implements the tutor world",
    );
    // A manifest that does not parse strictly.
    let unknown = manifest.replacen("[tutor]", "[tutor]\nvoice = \"warm\"", 1);
    refused(
        upload(&ada, signed(&unknown, &wasm, &key)).await,
        422,
        "manifest",
        "voice",
    );
    // A component that is no component at all.
    refused(
        upload(&ada, signed(&manifest, b"\0asm not really", &key)).await,
        422,
        "component",
        "not a valid component",
    );
    // A name this server's own plugins use.
    let (reserved, _) = package("tutor", "tutor", "9.0.0", "ada");
    refused(
        upload(&ada, signed(&reserved, &wasm, &key)).await,
        409,
        "",
        "reserved",
    );
    // A component over the limit inside the archive, and an archive over the limit.
    let mut huge = wasm.clone();
    huge.resize((20 << 20) + 1, 0);
    refused(
        upload(&ada, signed(&manifest, &huge, &key)).await,
        422,
        "archive",
        "larger than",
    );
    let (status, body) = upload(&ada, vec![0; (30 << 20) + 1]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    // A path leaving the package (zip-slip), written header by header.
    let mut tar = tar::Builder::new(Vec::new());
    for (path, bytes) in [
        ("penpal-plugin.toml", manifest.as_bytes()),
        ("../../plugins/evil.wasm", &wasm[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, bytes).unwrap();
    }
    refused(
        upload(&ada, tar.into_inner().unwrap()).await,
        422,
        "archive",
        "`..`",
    );
    assert_eq!(stored(&db).await, (0, 0), "nothing refused is stored");

    // Grace claims a name; Ada cannot publish under it, even a greater version.
    let (graces, _) = package("tutor", "grace-tutor", "1.0.0", "grace");
    let (status, body) = upload(&grace, signed(&graces, &wasm, &graces_key)).await;
    assert_eq!(status, 201, "{body}");
    let (theft, _) = package("tutor", "grace-tutor", "2.0.0", "ada");
    refused(
        upload(&ada, signed(&theft, &wasm, &key)).await,
        409,
        "",
        "belongs to another publisher",
    );
    // Nor change or revoke Grace's keys.
    let (status, _) = ada
        .call(
            "DELETE",
            &format!(
                "/v1/publishers/grace/keys/{}",
                graces_key.public().fingerprint()
            ),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = ada
        .call(
            "POST",
            "/v1/publishers/grace/keys",
            Some(json!({"public_key": stranger.public().to_base64(), "label": "mine now"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = ada
        .call("DELETE", "/v1/publishers/nobody/keys/abc", None)
        .await;
    assert_eq!(status, 404);
    // A version cannot change its kind either.
    let (notifier, mail_wasm) = package("webhook", "grace-tutor", "3.0.0", "grace");
    refused(
        upload(&grace, signed(&notifier, &mail_wasm, &graces_key)).await,
        422,
        "manifest",
        "is a tutor package",
    );
    let (versions, blobs) = stored(&db).await;
    assert_eq!(
        (versions, blobs),
        (1, 2),
        "Grace's one version: its archive and its screenshot"
    );
    server.stop().await;
}

async fn catalogue(base: &str, query: &str) -> Vec<String> {
    let resp = http()
        .get(format!("{base}/v1/marketplace/packages{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{query}");
    let found: Value = resp.json().await.unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn the_catalogue_finds_shows_serves_and_withdraws_packages() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, _ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let grace = publisher(&base, &sink, "grace@example.com", "grace").await;
    let ada_key = key(&ada, "ada").await;
    let grace_key = crate::marketplace::key(&grace, "grace").await;
    let (m1, tutor) = package("tutor", "ada-camille", "1.0.0", "ada");
    let first = signed(&m1, &tutor, &ada_key);
    assert_eq!(upload(&ada, first.clone()).await.0, 201);
    let (m2, _) = package("tutor", "ada-camille", "1.1.0", "ada");
    assert_eq!(upload(&ada, signed(&m2, &tutor, &ada_key)).await.0, 201);
    let (hooks, webhook) = package("webhook", "grace-hooks", "0.3.0", "grace");
    assert_eq!(
        upload(&grace, signed(&hooks, &webhook, &grace_key)).await.0,
        201
    );

    // Search and filters.
    let mut all = catalogue(&base, "").await;
    all.sort();
    assert_eq!(all, ["ada-camille", "grace-hooks"]);
    assert_eq!(catalogue(&base, "?kind=notifier").await, ["grace-hooks"]);
    assert_eq!(
        catalogue(&base, "?kind=tutor&language=fr&level=B2").await,
        ["ada-camille"]
    );
    assert!(catalogue(&base, "?language=ja").await.is_empty());
    assert_eq!(catalogue(&base, "?q=PATIENT").await, ["ada-camille"]);
    assert!(catalogue(&base, "?q=patient+webhook").await.is_empty());
    assert_eq!(catalogue(&base, "?publisher=grace").await, ["grace-hooks"]);
    let (status, body) = get(server.addr, "/v1/marketplace/packages?kind=spaceship").await;
    assert_eq!(status, 400, "{body}");
    for bad in ["language=12345", "publisher=Ada!", "page=501"] {
        let (status, body) = get(server.addr, &format!("/v1/marketplace/packages?{bad}")).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }

    // The package's page: newest version first, its README and screenshots, the publisher.
    let (status, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["latest"], "1.1.0");
    assert_eq!(page["publisher_name"], "Ada's tutors");
    assert_eq!(page["display_name"], "Camille — tutor");
    assert_eq!(page["readme"], "# A tutor\n\nPatient.");
    let versions: Vec<&str> = page["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    assert_eq!(page["screenshots"][0]["name"], "chat.png");
    let shot = http()
        .get(server.url("/v1/marketplace/packages/ada-camille/1.1.0/screenshots/chat.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(shot.headers()["content-type"], "image/png");
    assert_eq!(
        &shot.bytes().await.unwrap()[..],
        b"\x89PNG\r\n\x1a\nnot really"
    );
    let (status, _) = get(
        server.addr,
        "/v1/marketplace/packages/ada-camille/1.1.0/screenshots/other.png",
    )
    .await;
    assert_eq!(status, 404);
    let (status, v) = get(server.addr, "/v1/marketplace/packages/ada-camille/1.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(v["manifest"], m1, "the manifest exactly as signed");

    // A download is the archive as published, checks out against the publisher's key, and
    // is counted.
    let got = http()
        .get(server.url("/v1/marketplace/packages/ada-camille/1.0.0/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers()["etag"].to_str().unwrap(),
        format!("\"sha256:{}\"", penpal::marketplace::blobs::digest(&first))
    );
    let bytes = got.bytes().await.unwrap().to_vec();
    assert_eq!(bytes, first);
    let a = archive::unpack(&bytes).unwrap();
    let (_, publisher) = get(server.addr, "/v1/publishers/ada").await;
    let public = penpal::marketplace::signature::PublicKey::parse(
        publisher["keys"][0]["public_key"].as_str().unwrap(),
    )
    .unwrap();
    penpal::marketplace::signature::Signature::parse(std::str::from_utf8(&a.signature).unwrap())
        .unwrap()
        .verify(&a.manifest, &a.component.1, &public)
        .expect("a download verifies against the publisher's published key");
    let (_, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(page["downloads"], 1);
    let (status, _) = get(
        server.addr,
        "/v1/marketplace/packages/ada-camille/9.9.9/download",
    )
    .await;
    assert_eq!(status, 404);

    // Yanking: only the publisher; the latest steps back; a package with nothing left to
    // install leaves the catalogue, while its page and pinned downloads stay.
    let yank = |v: &str, yanked: bool| {
        (
            format!("/v1/marketplace/packages/ada-camille/{v}/yanked"),
            Some(json!({ "yanked": yanked })),
        )
    };
    let (path, body) = yank("1.1.0", true);
    assert_eq!(grace.call("PUT", &path, body.clone()).await.0, 403);
    let (status, v) = ada.call("PUT", &path, body).await;
    assert_eq!((status, &v["yanked"]), (200, &json!(true)), "{v}");
    let (_, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(page["latest"], "1.0.0");
    let (path, body) = yank("1.0.0", true);
    assert_eq!(ada.call("PUT", &path, body).await.0, 200);
    assert_eq!(catalogue(&base, "").await, ["grace-hooks"]);
    let (_, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(page["latest"], "");
    // The publisher's page still names it, so its dashboard can restore it.
    let (_, publisher) = get(server.addr, "/v1/publishers/ada").await;
    assert_eq!(publisher["packages"], json!(["ada-camille"]), "{publisher}");
    let (status, _) = get(
        server.addr,
        "/v1/marketplace/packages/ada-camille/1.0.0/download",
    )
    .await;
    assert_eq!(status, 200, "a yanked version stays downloadable");
    let (path, body) = yank("1.1.0", false);
    assert_eq!(ada.call("PUT", &path, body).await.0, 200);
    let (_, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(page["latest"], "1.1.0");
    let (path, body) = yank("7.0.0", true);
    assert_eq!(ada.call("PUT", &path, body).await.0, 404);

    // Revoking the key that signed every version takes the package off the catalogue.
    let (status, _) = ada
        .call(
            "DELETE",
            &format!("/v1/publishers/ada/keys/{}", ada_key.public().fingerprint()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(catalogue(&base, "").await, ["grace-hooks"]);
    let (_, page) = get(server.addr, "/v1/marketplace/packages/ada-camille").await;
    assert_eq!(page["latest"], "");
    assert_eq!(page["versions"][0]["key_revoked"], true);
    server.stop().await;
}

/// A plugin's line in the operator's `GET /v1/plugins`.
async fn plugin_status(ops: &Client, name: &str) -> Option<Value> {
    let (status, body) = ops.call("GET", "/v1/plugins", None).await;
    assert_eq!(status, 200, "{body}");
    body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

/// Waits until `name`'s install satisfies `done`, and answers it.
async fn install_until(
    ops: &Client,
    name: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    within(60, what, async {
        loop {
            let (status, view) = ops
                .call("GET", &format!("/v1/marketplace/installs/{name}"), None)
                .await;
            if status == 200 && done(&view) {
                return view;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Snoop (a tutor that tries every capability) as Ada's `ada-snoop` at `version`, with
/// `extra` appended under its `[capabilities]`.
fn snoop(version: &str, extra: &str) -> (String, Vec<u8>) {
    let (manifest, wasm) = package_at(&guest("snoop"), "ada-snoop", version, "ada");
    (
        manifest.replacen("[capabilities]\n", &format!("[capabilities]\n{extra}"), 1),
        wasm,
    )
}

#[actix_rt::test]
async fn an_operator_installs_with_explicit_grants_and_upgrades_wait_for_new_asks() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let key = key(&ada, "ada").await;
    let (m, wasm) = snoop("1.0.0", "");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);

    // Only operators install server-wide; only what the version requests can be granted.
    let learner = Client {
        base: base.clone(),
        token: new_learner(&base, "B1").await,
    };
    let body = json!({"package": "ada-snoop", "grants": {"kv": true}});
    assert_eq!(
        learner
            .call("POST", "/v1/marketplace/installs", Some(body.clone()))
            .await
            .0,
        403
    );
    let (status, err) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-snoop", "grants": {"kv": true, "http": ["api.evil.example"]}})),
        )
        .await;
    refused((status, err), 422, "grants", "api.evil.example");
    assert!(
        plugin_status(&ops, "ada-snoop").await.is_none(),
        "nothing installed"
    );

    // Nothing is granted unless ticked: here the store, not the model nor the secret.
    let (status, view) = ops
        .call("POST", "/v1/marketplace/installs", Some(body.clone()))
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["version"], "1.0.0");
    assert_eq!(view["range"], "^1.0.0");
    assert_eq!(view["status"], "active");
    let ungranted = view["ungranted"].to_string();
    assert!(
        ungranted.contains("language model") && ungranted.contains("`api_key`"),
        "the install says what was left ungranted: {view}"
    );
    assert!(!ungranted.contains("key-value"), "{view}");
    assert_eq!(
        ops.call("POST", "/v1/marketplace/installs", Some(body))
            .await
            .0,
        409
    );

    // A learner finds it and chats with it; its ungranted calls are denied, the granted
    // store works.
    let (_, tutors) = get(server.addr, "/v1/tutors").await;
    assert!(tutors.to_string().contains("\"ada-snoop\""), "{tutors}");
    let (status, conv) = learner
        .call(
            "POST",
            "/v1/conversations",
            Some(json!({"personality": "ada-snoop", "mode": "tutor", "language": "fr"})),
        )
        .await;
    assert_eq!(status, 201, "{conv}");
    let conv = conv["id"].as_str().unwrap().to_string();
    let say = |text: &'static str| {
        let learner = &learner;
        let conv = conv.clone();
        async move {
            let (status, reply) = learner
                .call(
                    "POST",
                    &format!("/v1/conversations/{conv}/messages"),
                    Some(json!({"text": text})),
                )
                .await;
            assert_eq!(status, 201, "{reply}");
        }
    };
    say("Bonjour").await;
    let health = &plugin_status(&ops, "ada-snoop").await.unwrap()["health"];
    assert!(
        health["denied"].as_u64().unwrap() >= 2,
        "the model and the secret were denied: {health}"
    );
    assert_eq!(health["llm_tokens"], 0, "{health}");
    assert_eq!(health["guest_errors"], 0, "{health}");

    // Granting the model takes effect live.
    let (status, view) = ops
        .call(
            "PATCH",
            "/v1/marketplace/installs/ada-snoop",
            Some(json!({"grants": {"kv": true, "llm": true}})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    say("Encore").await;
    let health = &plugin_status(&ops, "ada-snoop").await.unwrap()["health"];
    assert!(health["llm_tokens"].as_u64().unwrap() > 0, "{health}");

    // A new version within the range, asking for nothing more, is installed on its own.
    let (m, _) = snoop("1.1.0", "");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    install_until(&ops, "ada-snoop", "1.1.0 installed", |v| {
        v["version"] == "1.1.0"
    })
    .await;
    assert_eq!(
        plugin_status(&ops, "ada-snoop").await.unwrap()["version"],
        "1.1.0"
    );

    // One asking for a new host waits for a grant while 1.1.0 keeps serving.
    let (m, _) = snoop("1.2.0", "http = [\"api.ada.example\"]\n");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    let waiting = install_until(&ops, "ada-snoop", "1.2.0 waits", |v| {
        v["status"] == "waiting_for_grant"
    })
    .await;
    assert_eq!(waiting["version"], "1.1.0");
    assert_eq!(waiting["waiting"]["version"], "1.2.0");
    assert!(
        waiting["waiting"]["asks"]
            .to_string()
            .contains("api.ada.example"),
        "{waiting}"
    );
    assert_eq!(
        plugin_status(&ops, "ada-snoop").await.unwrap()["version"],
        "1.1.0"
    );
    say("Toujours là ?").await;

    // Deciding on the new asks (declining the host) lets it through.
    let (status, view) = ops
        .call(
            "PATCH",
            "/v1/marketplace/installs/ada-snoop",
            Some(json!({"grants": {"kv": true, "llm": true}})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["version"].as_str(), view["status"].as_str()),
        (Some("1.2.0"), Some("active")),
        "{view}"
    );
    assert!(
        view["ungranted"].to_string().contains("api.ada.example"),
        "{view}"
    );
    assert_eq!(
        plugin_status(&ops, "ada-snoop").await.unwrap()["version"],
        "1.2.0"
    );

    // Rollback returns to 1.1.0 and pins it: a newer version no longer moves it.
    let (status, view) = ops
        .call("POST", "/v1/marketplace/installs/ada-snoop/rollback", None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["version"].as_str(), view["pinned"].as_bool()),
        (Some("1.1.0"), Some(true))
    );
    assert_eq!(
        plugin_status(&ops, "ada-snoop").await.unwrap()["version"],
        "1.1.0"
    );
    let (m, _) = snoop("1.3.0", "");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-snoop/upgrade",
            Some(json!({"version": "2.0.0"})),
        )
        .await;
    refused((status, view), 422, "version", "no version 2.0.0");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        plugin_status(&ops, "ada-snoop").await.unwrap()["version"],
        "1.1.0",
        "pinned"
    );
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-snoop/upgrade",
            Some(json!({})),
        )
        .await;
    assert_eq!((status, &view["version"]), (200, &json!("1.3.0")), "{view}");

    // A revoked key flags what it signed (the default policy keeps it running).
    let (status, _) = ada
        .call(
            "DELETE",
            &format!("/v1/publishers/ada/keys/{}", key.public().fingerprint()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, view) = ops
        .call("GET", "/v1/marketplace/installs/ada-snoop", None)
        .await;
    assert_eq!(
        (view["key_revoked"].as_bool(), view["status"].as_str()),
        (Some(true), Some("active")),
        "{view}"
    );

    // Uninstalling takes it off the tutors; the audit log tells the whole story.
    let (status, _) = ops
        .call("DELETE", "/v1/marketplace/installs/ada-snoop", None)
        .await;
    assert_eq!(status, 204);
    assert!(plugin_status(&ops, "ada-snoop").await.is_none());
    let (_, tutors) = get(server.addr, "/v1/tutors").await;
    assert!(!tutors.to_string().contains("\"ada-snoop\""), "{tutors}");
    let (status, log) = ops.call("GET", "/v1/marketplace/audit", None).await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<(String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "install",
            "grant",
            "upgrade",
            "waiting_for_grant",
            "grant",
            "upgrade",
            "rollback",
            "upgrade",
            "uninstall"
        ],
        "{log}"
    );
    assert_eq!(
        actions[2].1, "automatic",
        "the in-range upgrade was automatic"
    );
    assert_ne!(actions[0].1, "automatic");
    assert!(
        log[8]["detail"]
            .as_str()
            .unwrap()
            .contains("left ungranted"),
        "{log}"
    );
    assert_eq!(
        learner.call("GET", "/v1/marketplace/audit", None).await.0,
        403
    );
    server.stop().await;
}

#[actix_rt::test]
async fn a_revoked_key_stops_what_it_signed_and_the_operator_policy_can_disable_it() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = crate::schools::server_with(data.path(), 300, |args| {
        configure(args, "[marketplace]\non_revoked = \"disable\"")
    })
    .await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let old_key = key(&ada, "ada").await;
    for name in ["ada-camille", "ada-louise"] {
        let (m, wasm) = package("tutor", name, "1.0.0", "ada");
        assert_eq!(upload(&ada, signed(&m, &wasm, &old_key)).await.0, 201);
    }
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-camille"})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(
        view["granted"],
        json!([]),
        "nothing requested, nothing granted"
    );
    assert!(plugin_status(&ops, "ada-camille").await.is_some());

    // The key is revoked: the install stops, and what the key signed no longer installs.
    let (status, _) = ada
        .call(
            "DELETE",
            &format!("/v1/publishers/ada/keys/{}", old_key.public().fingerprint()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, view) = ops
        .call("GET", "/v1/marketplace/installs/ada-camille", None)
        .await;
    assert_eq!(view["status"], "disabled", "{view}");
    assert!(
        view["disabled"].as_str().unwrap().contains("revoked"),
        "{view}"
    );
    assert!(
        plugin_status(&ops, "ada-camille").await.is_none(),
        "it no longer runs"
    );
    let (status, err) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-louise", "version": "1.0.0"})),
        )
        .await;
    refused((status, err), 409, "", "revoked");

    // A version signed with the new key brings it back.
    let new_key = crate::marketplace::key(&ada, "ada").await;
    let (m, wasm) = package("tutor", "ada-camille", "1.0.1", "ada");
    assert_eq!(upload(&ada, signed(&m, &wasm, &new_key)).await.0, 201);
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-camille/upgrade",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["version"].as_str(), view["status"].as_str()),
        (Some("1.0.1"), Some("active")),
        "{view}"
    );
    assert_eq!(
        plugin_status(&ops, "ada-camille").await.unwrap()["version"],
        "1.0.1"
    );
    let (_, log) = ops.call("GET", "/v1/marketplace/audit", None).await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "disable" && e["actor"] == "automatic"),
        "{log}"
    );
    server.stop().await;
}

/// Runs the `penpal` binary with `args` and `env` off the test's thread (the servers answer on
/// it); returns (success, stdout, stderr).
pub(crate) async fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_penpal"))
            .args(&args)
            .env("PENPAL_LOG", "warn")
            .env(
                "XDG_CACHE_HOME",
                repo().join("target").join("test-author-cache"),
            )
            .env_remove("PENPAL_TOKEN")
            .envs(env)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// The package directory of Ada's tutor at `version`, as an author keeps it.
fn author_dir(root: &std::path::Path, version: &str) -> std::path::PathBuf {
    let dir = root.join(format!("ada-camille-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (manifest, wasm) = package("tutor", "ada-camille", version, "ada");
    std::fs::write(dir.join("penpal-plugin.toml"), manifest).unwrap();
    std::fs::write(dir.join("plugin.wasm"), wasm).unwrap();
    std::fs::write(dir.join("README.md"), "# Camille\n\nA patient tutor.\n").unwrap();
    dir
}

#[actix_rt::test]
async fn a_package_published_with_the_cli_installs_on_another_server_from_its_registry() {
    let data = tempfile::tempdir().unwrap();
    for side in ["a", "b"] {
        std::fs::create_dir_all(data.path().join(side)).unwrap();
    }
    let (registry, _db, sink, _ops) = crate::schools::server(&data.path().join("a")).await;
    let reg = registry.url("");
    let ada = publisher(&reg, &sink, "ada@example.com", "ada").await;

    // The author's side: a key, a publish token, a signed package, the CLI.
    let author = data.path().join("author");
    std::fs::create_dir_all(&author).unwrap();
    let key_file = author.join("ada.pem");
    let (ok, out, err) = cli(
        &["key", "generate", "--out", key_file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .unwrap()
        .trim()
        .to_string();
    let (status, body) = ada
        .call(
            "POST",
            "/v1/publishers/ada/keys",
            Some(json!({"public_key": public, "label": "laptop"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, made) = ada
        .call(
            "POST",
            "/v1/publishers/ada/tokens",
            Some(json!({"label": "CI"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pp_"), "{made}");
    let (_, listed) = ada.call("GET", "/v1/publishers/ada/tokens", None).await;
    assert_eq!(listed[0]["label"], "CI");
    assert!(
        listed[0].get("token").is_none(),
        "a token is shown once: {listed}"
    );

    let v1 = author_dir(&author, "1.0.0");
    let v1s = v1.to_str().unwrap();
    let (ok, _, err) = cli(
        &["plugin", "publish", v1s, "--registry", &reg],
        &[("PENPAL_TOKEN", &token)],
    )
    .await;
    assert!(!ok && err.contains("penpal plugin sign"), "unsigned: {err}");
    let (ok, _, err) = cli(
        &["plugin", "sign", v1s, "--key", key_file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["plugin", "publish", v1s, "--registry", &reg], &[]).await;
    assert!(!ok && err.contains("PENPAL_TOKEN"), "no token: {err}");
    let (ok, _, err) = cli(
        &["plugin", "publish", v1s, "--registry", &reg],
        &[("PENPAL_TOKEN", "pp_not-a-real-token")],
    )
    .await;
    assert!(!ok && err.contains("unknown or revoked"), "{err}");
    let (ok, out, err) = cli(
        &["plugin", "publish", v1s, "--registry", &reg],
        &[("PENPAL_TOKEN", &token)],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("published ada-camille 1.0.0"), "{out}");
    let (_, listed) = ada.call("GET", "/v1/publishers/ada/tokens", None).await;
    assert!(listed[0]["last_used_at"].is_i64(), "{listed}");

    // Another server, which lists the registry, installs from it and a learner chats.
    let (other, _db2, _sink2, ops) = installer(&data.path().join("b"), &reg).await;
    let (status, err) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-camille", "registry": "https://elsewhere.example"})),
        )
        .await;
    refused(
        (status, err),
        422,
        "registry",
        "not one of this server's registries",
    );
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-camille", "registry": reg})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["version"], "1.0.0");
    let learner = Client {
        base: other.url(""),
        token: new_learner(&other.url(""), "B1").await,
    };
    chat_once(&learner, "ada-camille", "tutor", "Bonjour Camille").await;
    assert!(
        catalogue(&other.url(""), "").await.is_empty(),
        "installed here, not offered from here"
    );

    // A new version there is one upgrade away here.
    let v11 = author_dir(&author, "1.1.0");
    let (ok, _, err) = cli(
        &[
            "plugin",
            "sign",
            v11.to_str().unwrap(),
            "--key",
            key_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let archive = v11.join("ada-camille-1.1.0.penpal");
    let (ok, _, err) = cli(
        &[
            "plugin",
            "publish",
            archive.to_str().unwrap(),
            "--registry",
            &reg,
        ],
        &[("PENPAL_TOKEN", &token)],
    )
    .await;
    assert!(ok, "{err}");
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-camille/upgrade",
            Some(json!({})),
        )
        .await;
    assert_eq!((status, &view["version"]), (200, &json!("1.1.0")), "{view}");

    // A version signed by a key not pinned here waits for the admin's confirmation.
    let new_key = crate::marketplace::key(&ada, "ada").await;
    let (m, wasm) = package("tutor", "ada-camille", "1.2.0", "ada");
    let (status, body) = upload(&ada, signed(&m, &wasm, &new_key)).await;
    assert_eq!(status, 201, "{body}");
    let (status, err) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-camille/upgrade",
            Some(json!({})),
        )
        .await;
    refused((status, err), 409, "", "not the one pinned");
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs/ada-camille/upgrade",
            Some(json!({"trust_key": new_key.public().fingerprint()})),
        )
        .await;
    assert_eq!((status, &view["version"]), (200, &json!("1.2.0")), "{view}");
    assert_eq!(
        plugin_status(&ops, "ada-camille").await.unwrap()["version"],
        "1.2.0"
    );

    // A revoked token publishes nothing.
    let (status, _) = ada
        .call(
            "DELETE",
            &format!("/v1/publishers/ada/tokens/{}", made["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (ok, _, err) = cli(
        &[
            "plugin",
            "publish",
            archive.to_str().unwrap(),
            "--registry",
            &reg,
        ],
        &[("PENPAL_TOKEN", &token)],
    )
    .await;
    assert!(!ok && err.contains("unknown or revoked"), "{err}");
    other.stop().await;
    registry.stop().await;
}

/// `bytes` (an archive) with one byte of its component changed, the signature kept.
fn forged(bytes: &[u8]) -> Vec<u8> {
    let mut a = archive::unpack(bytes).unwrap();
    let at = a.component.1.len() / 2;
    a.component.1[at] ^= 1;
    archive::pack(&a).unwrap()
}

/// A registry that relays `upstream` but serves forged archives, with digests to match.
async fn hostile_registry(upstream: String) -> String {
    use axum::http::Uri;
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let upstream = upstream.clone();
        async move {
            let fetch = |path: String| {
                let upstream = upstream.clone();
                async move {
                    http()
                        .get(format!("{upstream}{path}"))
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap()
                        .to_vec()
                }
            };
            let path = uri.path().to_string();
            let bytes = fetch(path.clone()).await;
            if path.ends_with("/download") {
                return forged(&bytes);
            }
            if path == "/v1/marketplace/packages/ada-camille" {
                let mut page: Value = serde_json::from_slice(&bytes).unwrap();
                for v in page["versions"].as_array_mut().unwrap() {
                    let real = fetch(format!(
                        "{path}/{}/download",
                        v["version"].as_str().unwrap()
                    ))
                    .await;
                    v["digest"] = json!(penpal::marketplace::blobs::digest(&forged(&real)));
                }
                return serde_json::to_vec(&page).unwrap();
            }
            bytes
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[actix_rt::test]
async fn a_registry_serving_a_forged_package_installs_nothing() {
    let data = tempfile::tempdir().unwrap();
    for side in ["a", "b"] {
        std::fs::create_dir_all(data.path().join(side)).unwrap();
    }
    let (registry, _db, sink, _ops) = crate::schools::server(&data.path().join("a")).await;
    let reg = registry.url("");
    let ada = publisher(&reg, &sink, "ada@example.com", "ada").await;
    let key = key(&ada, "ada").await;
    let (m, wasm) = package("tutor", "ada-camille", "1.0.0", "ada");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    let hostile = hostile_registry(reg.trim_end_matches('/').to_string()).await;

    let (other, db2, _sink2, ops) = installer(&data.path().join("b"), &hostile).await;
    let (status, err) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-camille", "registry": hostile})),
        )
        .await;
    refused(
        (status, err),
        422,
        "registry",
        "changed after it was signed",
    );
    assert!(plugin_status(&ops, "ada-camille").await.is_none());
    assert_eq!(stored(&db2).await, (0, 0), "nothing of it is kept");
    other.stop().await;
    registry.stop().await;
}

/// A learner of French at B1 who joined `school` through its admin's invitation.
async fn learner_in(base: &str, admin: &Client, school: &str, email: &str) -> Client {
    let who = account(base, email).await;
    let (status, _) = who
        .call(
            "PATCH",
            "/v1/me/profile",
            Some(json!({"native_language": "en", "targets": [{"language": "fr", "level": "B1"}]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, made) = admin
        .call(
            "POST",
            &format!("/v1/schools/{school}/invitations"),
            Some(json!({"role": "learner"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().unwrap();
    let (status, joined) = who
        .call(
            "POST",
            &format!("/v1/invitations/{}/accept", crate::schools::token(url)),
            None,
        )
        .await;
    assert_eq!(status, 201, "{joined}");
    who
}

async fn tutor_names(who: Option<&Client>, base: &str) -> Vec<String> {
    let mut req = http().get(format!("{base}/v1/tutors"));
    if let Some(c) = who {
        req = req.bearer_auth(&c.token);
    }
    let list: Value = req.send().await.unwrap().json().await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_rt::test]
async fn a_school_installs_a_tutor_that_only_its_own_members_see_and_use() {
    let data = tempfile::tempdir().unwrap();
    // Six accounts sign up from one address here.
    let (server, _db, sink, ops) = crate::schools::server_with(data.path(), 300, |args| {
        args.app.signups_per_hour = 100;
    })
    .await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let key = key(&ada, "ada").await;
    let (m, wasm) = snoop("1.0.0", "");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    let (hugo, hugo_admin) =
        crate::schools::school(&base, &ops, &sink, "Lycée Hugo", "head@hugo.example", 10).await;
    let (curie, curie_admin) = crate::schools::school(
        &base,
        &ops,
        &sink,
        "Collège Curie",
        "head@curie.example",
        10,
    )
    .await;
    let ana = learner_in(&base, &hugo_admin, &hugo, "ana@hugo.example").await;
    let bob = learner_in(&base, &curie_admin, &curie, "bob@curie.example").await;

    // A school admin installs for the school; the operator's secrets are not theirs to grant.
    let installs = format!("/v1/schools/{hugo}/installs");
    let (status, err) = hugo_admin
        .call(
            "POST",
            &installs,
            Some(json!({"package": "ada-snoop", "grants": {"secrets": ["api_key"]}})),
        )
        .await;
    refused((status, err), 422, "grants", "operator's");
    assert_eq!(
        ana.call("POST", &installs, Some(json!({"package": "ada-snoop"})))
            .await
            .0,
        403,
        "a learner is no admin"
    );
    assert_eq!(
        curie_admin
            .call("POST", &installs, Some(json!({"package": "ada-snoop"})))
            .await
            .0,
        404,
        "another school's admin sees no such school"
    );
    let (status, view) = hugo_admin
        .call(
            "POST",
            &installs,
            Some(json!({"package": "ada-snoop", "grants": {"kv": true}})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let runs_as = format!("ada-snoop@{hugo}");
    assert_eq!(view["runs_as"], runs_as);
    assert_eq!(view["school"], hugo);

    // Hugo's learners see and use it; Curie's, and strangers, do not — it looks like nothing.
    assert!(tutor_names(Some(&ana), &base).await.contains(&runs_as));
    assert!(!tutor_names(Some(&bob), &base).await.contains(&runs_as));
    assert!(!tutor_names(None, &base).await.contains(&runs_as));
    let opening = json!({"personality": runs_as, "mode": "tutor", "language": "fr"});
    let (status, conv) = ana
        .call("POST", "/v1/conversations", Some(opening.clone()))
        .await;
    assert_eq!(status, 201, "{conv}");
    let (status, reply) = ana
        .call(
            "POST",
            &format!(
                "/v1/conversations/{}/messages",
                conv["id"].as_str().unwrap()
            ),
            Some(json!({"text": "Bonjour"})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let (status, err) = bob.call("POST", "/v1/conversations", Some(opening)).await;
    refused(
        (status, err),
        422,
        "personality",
        "no tutor personality is called",
    );

    // Each scope keeps its own books.
    assert_eq!(
        curie_admin
            .call("GET", &format!("/v1/schools/{curie}/installs"), None)
            .await
            .1,
        json!([])
    );
    assert_eq!(curie_admin.call("GET", &installs, None).await.0, 404);
    assert_eq!(
        ops.call("GET", "/v1/marketplace/installs", None).await.1,
        json!([])
    );
    let (_, log) = hugo_admin
        .call("GET", &format!("/v1/schools/{hugo}/installs-audit"), None)
        .await;
    assert_eq!(log[0]["action"], "install", "{log}");
    assert_eq!(log[0]["school"], hugo);
    assert_eq!(
        ops.call("GET", "/v1/marketplace/audit", None).await.1,
        json!([])
    );
    let health = &plugin_status(&ops, &runs_as).await.unwrap()["health"];
    assert!(
        health["denied"].as_u64().unwrap() >= 2,
        "ungranted calls denied: {health}"
    );

    // The operator can install the same package server-wide beside it.
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-snoop"})),
        )
        .await;
    assert_eq!(
        (status, &view["runs_as"]),
        (201, &json!("ada-snoop")),
        "{view}"
    );
    assert!(
        tutor_names(Some(&bob), &base)
            .await
            .contains(&"ada-snoop".to_string())
    );

    // Uninstalled for the school, it is gone for its learners.
    assert_eq!(
        hugo_admin
            .call("DELETE", &format!("{installs}/ada-snoop"), None)
            .await
            .0,
        204
    );
    assert!(!tutor_names(Some(&ana), &base).await.contains(&runs_as));
    assert!(plugin_status(&ops, &runs_as).await.is_none());
    server.stop().await;
}

#[actix_rt::test]
async fn no_turn_fails_while_an_installed_tutor_is_upgraded_under_it() {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = crate::schools::server_with(data.path(), 300, |args| {
        // No plans: the learner chats as much as the test needs.
        std::fs::write(args.plugins.config.clone().unwrap(), "").unwrap();
    })
    .await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let key = key(&ada, "ada").await;
    let (m, wasm) = package("tutor", "ada-camille", "1.0.0", "ada");
    assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-camille"})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let learner = Client {
        base: base.clone(),
        token: new_learner(&base, "B1").await,
    };
    let mut conversations = Vec::new();
    for _ in 0..8 {
        let (status, conv) = learner
            .call(
                "POST",
                "/v1/conversations",
                Some(json!({"personality": "ada-camille", "mode": "tutor", "language": "fr"})),
            )
            .await;
        assert_eq!(status, 201, "{conv}");
        conversations.push(conv["id"].as_str().unwrap().to_string());
    }

    // Eight conversations chat while three new versions are published and installed under them.
    let chatting = futures_util::future::join_all(conversations.iter().map(|conv| {
        let learner = &learner;
        async move {
            let mut failed = Vec::new();
            for n in 0..6 {
                let (status, reply) = learner
                    .call(
                        "POST",
                        &format!("/v1/conversations/{conv}/messages"),
                        Some(json!({"text": format!("Message {n}")})),
                    )
                    .await;
                if status != 201 {
                    failed.push(format!("{status}: {reply}"));
                }
            }
            failed
        }
    }));
    let upgrading = async {
        for v in ["1.1.0", "1.2.0", "1.3.0"] {
            let (m, _) = package("tutor", "ada-camille", v, "ada");
            assert_eq!(upload(&ada, signed(&m, &wasm, &key)).await.0, 201);
            install_until(&ops, "ada-camille", v, |view| view["version"] == v).await;
        }
    };
    let (failed, ()) = futures_util::join!(chatting, upgrading);
    let failed: Vec<String> = failed.into_iter().flatten().collect();
    assert!(
        failed.is_empty(),
        "turns failed during the upgrades: {failed:?}"
    );
    assert_eq!(
        plugin_status(&ops, "ada-camille").await.unwrap()["version"],
        "1.3.0"
    );
    server.stop().await;
}

/// The whole third-party journey in `lang` (rust, python or js), as the template's README
/// tells it: `plugin new`, `build` (which checks), `key generate`, the key registered, a publish
/// token, `sign`, `publish`; then the operator installs it and a learner chats with it, the
/// SDK's analysis reader turning the model's JSON into corrections and vocabulary.
async fn journey(lang: &str, build_env: &[(&str, &str)]) {
    let data = tempfile::tempdir().unwrap();
    let (server, _db, sink, ops) = crate::schools::server(data.path()).await;
    let base = server.url("");
    let ada = publisher(&base, &sink, "ada@example.com", "ada").await;
    let author = data.path().join("author");
    std::fs::create_dir_all(&author).unwrap();

    let (ok, out, err) = cli(
        &[
            "plugin",
            "new",
            "ada-tutor",
            "--kind",
            "tutor",
            "--lang",
            lang,
            "--publisher",
            "ada",
            "--dir",
            author.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(ok, "{out}{err}");
    let project = author.join("ada-tutor");
    let p = project.to_str().unwrap();
    let (ok, _, err) = cli(
        &[
            "plugin",
            "new",
            "ada-tutor",
            "--kind",
            "tutor",
            "--lang",
            lang,
            "--dir",
            author.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, out, err) = cli(&["plugin", "build", p], build_env).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("exports    the tutor world") && out.trim_end().ends_with("ok"),
        "{out}"
    );
    // What the toolchain links but the manifest does not request is explained, not warned
    // about: the template builds clean.
    assert!(!out.contains("warning:"), "{out}");
    let key_file = author.join("ada.pem");
    let (ok, out, err) = cli(
        &["key", "generate", "--out", key_file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key"))
        .unwrap()
        .trim();
    let (status, _) = ada
        .call(
            "POST",
            "/v1/publishers/ada/keys",
            Some(json!({"public_key": public, "label": "laptop"})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, made) = ada
        .call(
            "POST",
            "/v1/publishers/ada/tokens",
            Some(json!({"label": "laptop"})),
        )
        .await;
    let token = made["token"].as_str().unwrap();
    let (ok, _, err) = cli(
        &["plugin", "sign", p, "--key", key_file.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = cli(
        &["plugin", "publish", p, "--registry", &base],
        &[("PENPAL_TOKEN", token)],
    )
    .await;
    assert!(ok, "{out}{err}");

    // The operator installs it; a learner finds it and chats.
    let (status, view) = ops
        .call(
            "POST",
            "/v1/marketplace/installs",
            Some(json!({"package": "ada-tutor"})),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    let learner = Client {
        base: base.clone(),
        token: new_learner(&base, "B1").await,
    };
    assert!(
        tutor_names(Some(&learner), &base)
            .await
            .contains(&"ada-tutor".to_string())
    );
    let turn = chat_once(
        &learner,
        "ada-tutor",
        "conversation",
        "Je va au cinema avec mon amis",
    )
    .await;
    let said = turn["reply"]["text"].as_str().unwrap_or_default();
    assert!(
        said.contains("penpal-scripted") && said.contains("level B1"),
        "the model answered the tutor's prompt, which names the learner's level: {turn}"
    );
    // The scripted model's analysis, read by this language's SDK: every error (the learner
    // asked for every one), each with its category, and the vocabulary item.
    let corrections: Vec<(&str, &str)> = turn["corrections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["corrected"].as_str().unwrap_or_default(),
                c["category"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        corrections,
        [
            ("je vais", "grammar"),
            ("mes amis", "grammar"),
            ("cinéma", "spelling")
        ],
        "{turn}"
    );
    assert_eq!(turn["vocabulary"][0]["term"], "cinema", "{turn}");
    server.stop().await;
}

#[actix_rt::test]
async fn a_third_party_makes_builds_signs_and_publishes_a_rust_tutor_that_a_learner_chats_with() {
    // The guests' target directory: the SDK is compiled there already.
    let target = repo().join("target").join("wasm");
    journey("rust", &[("CARGO_TARGET_DIR", target.to_str().unwrap())]).await;
}

#[actix_rt::test]
async fn a_third_party_makes_builds_signs_and_publishes_a_python_tutor_that_a_learner_chats_with() {
    // componentize-py as `cargo xtask test` installs it from the template's requirements.txt.
    let tools = repo().join("target/componentize-py/bin");
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    journey("python", &[("PATH", &path)]).await;
}

#[actix_rt::test]
async fn a_third_party_makes_builds_signs_and_publishes_a_javascript_tutor_that_a_learner_chats_with()
 {
    // `plugin build` installs componentize-js with npm, as it does for an author.
    journey("js", &[]).await;
}

#[actix_rt::test]
async fn plugin_new_makes_every_kind_in_rust_and_says_what_it_cannot_make() {
    let author = tempfile::tempdir().unwrap();
    let dir = author.path().to_str().unwrap();
    let target = repo().join("target").join("wasm");
    for (kind, name, world) in [
        ("notifier", "school-hooks", "the notifier world"),
        ("lms", "school-lms", "the lms world"),
        ("payment-provider", "coin-pay", "the payment-provider world"),
    ] {
        let (ok, out, err) = cli(
            &[
                "plugin",
                "new",
                name,
                "--kind",
                kind,
                "--publisher",
                "ada",
                "--dir",
                dir,
            ],
            &[],
        )
        .await;
        assert!(ok, "{out}{err}");
        let project = author.path().join(name);
        let (ok, out, err) = cli(
            &["plugin", "build", project.to_str().unwrap()],
            &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
        )
        .await;
        assert!(ok, "{out}{err}");
        assert!(
            out.contains(&format!("exports    {world}")) && out.trim_end().ends_with("ok"),
            "{out}"
        );
        assert!(!out.contains("warning:"), "{out}");
        // An author's first `cargo fmt` changes nothing.
        let fmt = std::process::Command::new("rustfmt")
            .args(["--check", "--edition", "2024"])
            .arg(project.join("src/lib.rs"))
            .output()
            .unwrap();
        assert!(
            fmt.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&fmt.stdout)
        );
    }
    // The notifier asks for the operator's receiver, nothing else.
    let manifest =
        std::fs::read_to_string(author.path().join("school-hooks/penpal-plugin.toml")).unwrap();
    assert!(manifest.contains("http = [\"operator\"]"), "{manifest}");
    // The provider keeps its keys as secrets, granted by name.
    let manifest =
        std::fs::read_to_string(author.path().join("coin-pay/penpal-plugin.toml")).unwrap();
    assert!(
        manifest.contains("secrets = [\"api_key\", \"webhook_secret\"]"),
        "{manifest}"
    );

    for (args, says) in [
        (
            vec![
                "plugin",
                "new",
                "pay",
                "--kind",
                "payment-provider",
                "--lang",
                "python",
                "--dir",
                dir,
            ],
            "no payment-provider template in Python yet",
        ),
        (
            vec![
                "plugin", "new", "hooks", "--kind", "notifier", "--lang", "js", "--dir", dir,
            ],
            "no notifier template in JavaScript yet",
        ),
    ] {
        let (ok, _, err) = cli(&args, &[]).await;
        assert!(!ok && err.contains(says), "{err}");
        assert!(
            err.contains("plugins/ directory"),
            "it says where to start: {err}"
        );
    }
    assert!(!author.path().join("pay").exists() && !author.path().join("hooks").exists());
}
