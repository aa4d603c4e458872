//! Content stored by its SHA-256: package archives and screenshots. Bytes live in the database
//! in 1 MiB chunks, so every node sharing it serves the same content and nothing depends on
//! one machine's disk. A blob is written once: chunks first, then the `blob` row that makes it
//! visible, so a reader never sees half of one; writing the same content again is a no-op.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

use crate::store::{Db, StoreError, StoreResult, now_ms};

/// Bytes per stored chunk: small enough for any database connection's message size.
const CHUNK: usize = 1 << 20;

/// The hex SHA-256 that names content: the same digest the compile cache keys components by.
pub use crate::plugins::cache::digest;

#[derive(Deserialize)]
struct Stored {
    size: u64,
    chunks: u64,
}

/// Stores `bytes` (if not already stored) and answers their digest.
pub async fn put(db: &Db, bytes: &[u8]) -> StoreResult<String> {
    let d = digest(bytes);
    if stored(db, &d).await?.is_some() {
        return Ok(d);
    }
    let parts: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
    for (n, part) in parts.iter().enumerate() {
        db.exec(
            "UPSERT type::record('blob_chunk', [$d, $n]) CONTENT { data: $data };",
            json!({"d": d, "n": n, "data": STANDARD.encode(part)}),
        )
        .await?;
    }
    db.exec(
        "UPSERT type::record('blob', $d) CONTENT { size: $size, chunks: $chunks, created_at: $now };",
        json!({"d": d, "size": bytes.len(), "chunks": parts.len(), "now": now_ms()}),
    )
    .await?;
    Ok(d)
}

async fn stored(db: &Db, d: &str) -> StoreResult<Option<Stored>> {
    db.one(
        "SELECT size, chunks FROM type::record('blob', $d);",
        json!({"d": d}),
    )
    .await
}

/// The bytes named `d`, checked against it; `None` when nothing is stored under it.
pub async fn get(db: &Db, d: &str) -> StoreResult<Option<Vec<u8>>> {
    let Some(blob) = stored(db, d).await? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(blob.size as usize);
    for n in 0..blob.chunks {
        let part: Option<String> = db
            .one(
                "SELECT VALUE data FROM type::record('blob_chunk', [$d, $n]);",
                json!({"d": d, "n": n}),
            )
            .await?;
        let part = part.ok_or_else(|| StoreError::Db(format!("blob {d} lacks chunk {n}")))?;
        out.extend(
            STANDARD
                .decode(part)
                .map_err(|e| StoreError::Db(format!("blob {d} chunk {n}: {e}")))?,
        );
    }
    // Content addressing is only worth its name if what comes out is what went in.
    if digest(&out) != d {
        return Err(StoreError::Db(format!(
            "blob {d} does not match its digest"
        )));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_round_trips_across_chunks_and_is_stored_once() {
        let db = Db::connect("mem://", None).await.expect("database");
        let bytes: Vec<u8> = (0..(CHUNK * 2 + 17)).map(|i| (i % 251) as u8).collect();
        let d = put(&db, &bytes).await.expect("stored");
        assert_eq!(d, digest(&bytes));
        assert_eq!(put(&db, &bytes).await.expect("again"), d);
        assert_eq!(get(&db, &d).await.expect("read"), Some(bytes));
        assert_eq!(get(&db, &digest(b"other")).await.expect("read"), None);
    }
}
