//! A minimal signed client for the Server API, for tests and tools.
//!
//! This module owns the client side of RC's request signing. It speaks just enough
//! HTTP/1.1 to talk to this server on loopback: one request per TCP connection
//! (`Connection: close`), a `Content-Length` body, and a response read to the end of
//! the stream (with chunked bodies decoded). It is not a general HTTP client: no
//! TLS, no redirects, no keep-alive.

use anyhow::{Context as _, bail};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long one request may take, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The RC signature: lowercase hex SHA1 of `app_secret + nonce + timestamp`.
pub fn sign(app_secret: &str, nonce: &str, timestamp: &str) -> String {
    crate::api::signature::sign(app_secret, nonce, timestamp)
}

/// POSTs `form` (URL-encoded) to `path` with RC signing headers (a fresh random
/// nonce, the current Unix time in seconds as RC's SDKs send it) and returns the
/// HTTP status and the JSON answer.
pub async fn post_signed(
    api_url: &str,
    app_key: &str,
    app_secret: &str,
    path: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<(u16, serde_json::Value)> {
    let nonce = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    let signature = sign(app_secret, &nonce, &timestamp);
    let body = encode_form(form)?;
    let headers = [
        ("App-Key", app_key),
        ("Nonce", nonce.as_str()),
        ("Timestamp", timestamp.as_str()),
        ("Signature", signature.as_str()),
    ];
    post_raw(api_url, path, &headers, body.as_bytes()).await
}

/// URL-encodes `form` as an `application/x-www-form-urlencoded` body.
pub fn encode_form(form: &[(&str, &str)]) -> anyhow::Result<String> {
    serde_html_form::to_string(form).context("cannot encode the form")
}

/// POSTs `body` to `path` with exactly the given extra headers (besides Host,
/// Content-Type, Content-Length and Connection) and returns the HTTP status and the
/// JSON answer. For tests of unsigned or wrongly signed requests.
pub async fn post_raw(
    api_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, serde_json::Value)> {
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        post_raw_inner(api_url, path, headers, body),
    )
    .await
    .with_context(|| format!("POST {path}: no answer within {REQUEST_TIMEOUT:?}"))?
}

async fn post_raw_inner(
    api_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<(u16, serde_json::Value)> {
    let authority = api_url
        .strip_prefix("http://")
        .with_context(|| format!("the API URL {api_url:?} does not start with http://"))?
        .trim_end_matches('/');
    anyhow::ensure!(
        !authority.is_empty() && !authority.contains('/'),
        "the API URL {api_url:?} must be http://HOST:PORT"
    );
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        anyhow::ensure!(
            !name.contains(['\r', '\n', ':']) && !value.contains(['\r', '\n']),
            "header {name:?} contains a line break"
        );
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .with_context(|| format!("reading the answer to POST {path}"))?;
    parse_response(&response).with_context(|| format!("the answer to POST {path}"))
}

/// Splits an HTTP/1.1 response into its status code and JSON body.
fn parse_response(response: &[u8]) -> anyhow::Result<(u16, serde_json::Value)> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&response[..split]).context("headers are not UTF-8")?;
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    if body.is_empty() {
        return Ok((status, serde_json::Value::Null));
    }
    let json = serde_json::from_slice(&body).with_context(|| {
        format!(
            "HTTP {status} with a body that is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        )
    })?;
    Ok((status, json))
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 11\r\n\r\n{\"code\":1}";
        let (status, json) = parse_response(plain).unwrap();
        assert_eq!((status, json["code"].as_i64()), (401, Some(1)));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n";
        let (status, json) = parse_response(chunked).unwrap();
        assert_eq!((status, json["a"].as_i64()), (200, Some(1)));
    }

    #[test]
    fn encodes_repeated_keys() {
        let body = encode_form(&[("userId", "a b"), ("userId", "c&d")]).unwrap();
        assert_eq!(body, "userId=a+b&userId=c%26d");
    }
}
