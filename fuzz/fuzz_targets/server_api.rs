//! The reference server's Server API request parsing: the signing headers (with the
//! replay guard), the body cap and the endpoint's form, through
//! `rcim_server::check_request`, the same code the router runs.
//!
//! Input layout: the first byte picks the endpoint and whether the harness signs
//! the request correctly (otherwise the signature is whatever the input says, and
//! the fuzzer would never get past it to the form parser); then header lines
//! `name:value` up to an empty line; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rcim_server::{ReplayGuard, check_request};

const APP_KEY: &str = "fuzz-key";
const APP_SECRET: &str = "fuzz-secret";
/// The server's clock during the run: 2023-11-14T22:13:20Z.
const NOW_MS: i64 = 1_700_000_000_000;

const PATHS: &[&str] = &[
    "/user/getToken.json",
    "/user/checkOnline.json",
    "/user/token/expire.json",
    "/user/block.json",
    "/user/unblock.json",
    "/user/block/query.json",
    "/message/private/publish.json",
    "/message/system/publish.json",
    "/message/group/publish.json",
    "/group/create.json",
    "/group/join.json",
    "/group/quit.json",
    "/group/dismiss.json",
    "/rcim/inbox/query.json",
    "/rcim/message/sent.json",
    "/rcim/message/bulk.json",
    "/stats.json",
    "/nope.json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector >> 1) % PATHS.len()];
    let sign_it = selector & 1 == 1;
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers: Vec<(String, Vec<u8>)> = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = String::from_utf8(line[..colon].to_vec()).ok()?;
            Some((name, line[colon + 1..].to_vec()))
        })
        .collect();
    if sign_it {
        let nonce = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("nonce"))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
            .unwrap_or_else(|| "fuzz-nonce".into());
        let timestamp = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("timestamp"))
            .map(|(_, v)| String::from_utf8_lossy(v).trim().to_owned())
            .unwrap_or_else(|| (NOW_MS / 1000).to_string());
        let signature = rcim_server::api_client::sign(APP_SECRET, &nonce, &timestamp);
        headers.retain(|(n, _)| {
            !["app-key", "nonce", "timestamp", "signature"]
                .contains(&n.to_ascii_lowercase().as_str())
        });
        headers.push(("App-Key".into(), APP_KEY.into()));
        headers.push(("Nonce".into(), nonce.into_bytes()));
        headers.push(("Timestamp".into(), timestamp.into_bytes()));
        headers.push(("Signature".into(), signature.into_bytes()));
    }
    let borrowed: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let guard = ReplayGuard::new();
    let first = check_request(path, &borrowed, body, APP_KEY, APP_SECRET, &guard, NOW_MS);
    if let Err(rejection) = &first {
        assert!(
            [400, 401, 404, 413, 429].contains(&rejection.status),
            "unexpected status {rejection:?}"
        );
        assert!(!rejection.message.is_empty());
    }
    // The same request again is a replay whenever the first got past the signature.
    let second = check_request(path, &borrowed, body, APP_KEY, APP_SECRET, &guard, NOW_MS);
    if first.is_ok() {
        assert_eq!(second.map_err(|r| (r.status, r.code)), Err((401, 1004)));
    }
});
