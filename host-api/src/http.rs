//! Outbound HTTP from a plugin, over `wasi:http`, blocking until the whole response is read.
//!
//! The host lets a request through only to a host the manifest lists under
//! `capabilities.http` *and* the installer granted; anything else fails with
//! [`PluginError::Denied`] before a connection is made. Responses are read whole, up to
//! [`MAX_RESPONSE_BYTES`], because plugin calls are short and bounded.

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

use crate::types::PluginError;

/// Largest response body read, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, PluginError> {
    request("GET", url, &[], &[])
}

/// `POST url` with `body` of `content_type`.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response, PluginError> {
    request("POST", url, &[("content-type", content_type)], body)
}

fn error(code: ErrorCode) -> PluginError {
    match code {
        ErrorCode::HttpRequestDenied => {
            PluginError::Denied("outbound HTTP to this host is not granted".into())
        }
        ErrorCode::HttpRequestUriInvalid => PluginError::InvalidInput("invalid URL".into()),
        other => PluginError::Unavailable(format!("HTTP request failed: {other:?}")),
    }
}

fn internal(what: &str) -> PluginError {
    PluginError::Internal(format!("HTTP: {what}"))
}

/// Splits `http(s)://authority/path?query`.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), PluginError> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else {
        return Err(PluginError::InvalidInput(format!(
            "`{url}` is not an http:// or https:// URL"
        )));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(PluginError::InvalidInput(format!("`{url}` has no host")));
    }
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// Sends one request and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, PluginError> {
    let (scheme, authority, path) = split_url(url)?;
    let entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let fields = Fields::from_list(&entries)
        .map_err(|e| PluginError::InvalidInput(format!("bad header: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match method.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    request
        .set_method(&method)
        .map_err(|()| internal("bad method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| internal("bad scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| PluginError::InvalidInput(format!("bad host in `{url}`")))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| PluginError::InvalidInput(format!("bad path in `{url}`")))?;

    let outgoing = request.body().map_err(|()| internal("no request body"))?;
    let pending = outgoing_handler::handle(request, None).map_err(error)?;
    // A failed write usually means the host refused the request (a host not granted, an
    // address not allowed) and closed the body: the response says why, so it is read first.
    let sent = (|| {
        let stream = outgoing.write().map_err(|()| internal("no body stream"))?;
        // Writes go in chunks the host accepts (it takes at most 4 KiB per blocking write).
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| PluginError::Unavailable(format!("sending the body: {e:?}")))?;
        }
        drop(stream);
        OutgoingBody::finish(outgoing, None).map_err(error)
    })();

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(error(code)),
        Some(Err(())) | None => return Err(internal("response already taken")),
    };
    sent?;
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| internal("no response body"))?;
    let stream = incoming
        .stream()
        .map_err(|()| internal("no response stream"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(PluginError::Unavailable(format!(
                        "response larger than {MAX_RESPONSE_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(e) => {
                return Err(PluginError::Unavailable(format!(
                    "reading the response: {e:?}"
                )));
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_authority_and_path() {
        let (s, a, p) = split_url("https://api.example.com/v1/x?y=1").unwrap();
        assert!(matches!(s, Scheme::Https));
        assert_eq!((a, p), ("api.example.com", "/v1/x?y=1"));
        let (_, a, p) = split_url("http://127.0.0.1:8080").unwrap();
        assert_eq!((a, p), ("127.0.0.1:8080", "/"));
        let (_, a, p) = split_url("http://h.io?q").unwrap();
        assert_eq!((a, p), ("h.io", "?q"));
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("https:///path").is_err());
    }
}
