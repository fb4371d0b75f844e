//! A minimal signed client for the Server API, for tests and tools.
//!
//! This module owns the client side of RC's request signing. It speaks just enough
//! HTTP/1.1 to talk to this server on loopback: one request per TCP connection
//! (`Connection: close`), a `Content-Length` body, and a response read to the end of
//! the stream (with chunked bodies decoded). It is not a general HTTP client: no
//! TLS, no redirects, no keep-alive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// How long one request may take, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request to the Server API got no usable answer. Each message names the
/// request (or the URL) and ends with the underlying cause, so it is complete on
/// its own line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiClientError {
    /// The form cannot be URL-encoded.
    #[error("cannot encode the form: {0}")]
    EncodeForm(serde_html_form::ser::Error),
    /// The API URL is not `http://…` (this client speaks no TLS).
    #[error("the API URL {url:?} does not start with http://")]
    NotHttp {
        /// The URL given.
        url: String,
    },
    /// The API URL has a path or no host.
    #[error("the API URL {url:?} must be http://HOST:PORT")]
    NotHostPort {
        /// The URL given.
        url: String,
    },
    /// A header name or value would break the request's lines.
    #[error("header {name:?} contains a line break")]
    HeaderLineBreak {
        /// The header's name.
        name: String,
    },
    /// The server cannot be reached.
    #[error("cannot connect to {authority}: {cause}")]
    Connect {
        /// `HOST:PORT`.
        authority: String,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The request cannot be sent.
    #[error("sending POST {path}: {cause}")]
    Send {
        /// The endpoint.
        path: String,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The answer cannot be read.
    #[error("reading the answer to POST {path}: {cause}")]
    Read {
        /// The endpoint.
        path: String,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The answer is not an HTTP response with a JSON (or empty) body.
    #[error("the answer to POST {path}: {cause}")]
    Answer {
        /// The endpoint.
        path: String,
        /// What is wrong with it.
        cause: AnswerError,
    },
    /// No complete answer within the request timeout.
    #[error("POST {path}: no answer within {after:?}")]
    Timeout {
        /// The endpoint.
        path: String,
        /// The timeout.
        after: Duration,
    },
}

/// What is wrong with an HTTP answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// The headers never end (`\r\n\r\n`).
    #[error("no end of headers")]
    NoEndOfHeaders,
    /// The headers are not UTF-8.
    #[error("headers are not UTF-8: {0}")]
    HeadersNotUtf8(std::str::Utf8Error),
    /// The status line has no numeric status.
    #[error("bad status line {0:?}")]
    BadStatusLine(String),
    /// The body is neither empty nor JSON.
    #[error("HTTP {status} with a body that is not JSON: {body:?}: {cause}")]
    NotJson {
        /// The HTTP status.
        status: u16,
        /// The body, lossily as text.
        body: String,
        /// What the JSON parser said.
        cause: serde_json::Error,
    },
    /// A chunked body ends inside a chunk-size line.
    #[error("truncated chunk size")]
    TruncatedChunkSize,
    /// A chunk-size line is not UTF-8.
    #[error("chunk size is not UTF-8: {0}")]
    ChunkSizeNotUtf8(std::str::Utf8Error),
    /// A chunk size is not hexadecimal.
    #[error("bad chunk size {text:?}: {cause}")]
    BadChunkSize {
        /// The size as sent.
        text: String,
        /// What the parser said.
        cause: std::num::ParseIntError,
    },
    /// A chunked body ends inside a chunk.
    #[error("truncated chunk")]
    TruncatedChunk,
}

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
) -> Result<(u16, serde_json::Value), ApiClientError> {
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
pub fn encode_form(form: &[(&str, &str)]) -> Result<String, ApiClientError> {
    serde_html_form::to_string(form).map_err(ApiClientError::EncodeForm)
}

/// POSTs `body` to `path` with exactly the given extra headers (besides Host,
/// Content-Type, Content-Length and Connection) and returns the HTTP status and the
/// JSON answer. For tests of unsigned or wrongly signed requests.
pub async fn post_raw(
    api_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, serde_json::Value), ApiClientError> {
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        post_raw_inner(api_url, path, headers, body),
    )
    .await
    .map_err(|_| ApiClientError::Timeout {
        path: path.to_owned(),
        after: REQUEST_TIMEOUT,
    })?
}

async fn post_raw_inner(
    api_url: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, serde_json::Value), ApiClientError> {
    let authority = api_url
        .strip_prefix("http://")
        .ok_or_else(|| ApiClientError::NotHttp {
            url: api_url.to_owned(),
        })?
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(ApiClientError::NotHostPort {
            url: api_url.to_owned(),
        });
    }
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
            return Err(ApiClientError::HeaderLineBreak {
                name: (*name).to_owned(),
            });
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");

    let mut stream =
        TcpStream::connect(authority)
            .await
            .map_err(|cause| ApiClientError::Connect {
                authority: authority.to_owned(),
                cause,
            })?;
    let sent = async {
        stream.write_all(request.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await
    };
    sent.await.map_err(|cause| ApiClientError::Send {
        path: path.to_owned(),
        cause,
    })?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|cause| ApiClientError::Read {
            path: path.to_owned(),
            cause,
        })?;
    parse_response(&response).map_err(|cause| ApiClientError::Answer {
        path: path.to_owned(),
        cause,
    })
}

/// Splits an HTTP/1.1 response into its status code and JSON body.
fn parse_response(response: &[u8]) -> Result<(u16, serde_json::Value), AnswerError> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(AnswerError::NoEndOfHeaders)?;
    let head = std::str::from_utf8(&response[..split]).map_err(AnswerError::HeadersNotUtf8)?;
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AnswerError::BadStatusLine(status_line.to_owned()))?;
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
    let json = serde_json::from_slice(&body).map_err(|cause| AnswerError::NotJson {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        cause,
    })?;
    Ok((status, json))
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, AnswerError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(AnswerError::TruncatedChunkSize)?;
        let size_text =
            std::str::from_utf8(&data[..line_end]).map_err(AnswerError::ChunkSizeNotUtf8)?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|cause| AnswerError::BadChunkSize {
                text: size_text.to_owned(),
                cause,
            })?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        // Saturating: a size from the wire may be anything up to usize::MAX.
        if data.len() < size.saturating_add(2) {
            return Err(AnswerError::TruncatedChunk);
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
