//! Every case in `tests/vectors/` sent through the running gateway, with the gateway's clock
//! fixed at the case's `now`: valid cases reach the upstream byte for byte, every other case
//! gets a 4xx response and never reaches it.

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use common::client::{request, Connection};
use common::upstream::Upstream;
use common::Gateway;
use hookgate::provider::Scheme;

const FILES: &[&str] = &[
    "github",
    "stripe",
    "slack",
    "standard-webhooks",
    "twilio",
    "sendgrid",
    "discord",
];
/// Cases in those files, so that none is skipped silently.
const CASES: usize = 315;

struct Case {
    id: String,
    provider: String,
    valid: bool,
    secrets: Vec<String>,
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    tolerance: u64,
    /// The URL the sender called, which URL-bound schemes sign.
    url: String,
}

fn load_cases() -> BTreeMap<Option<i64>, Vec<Case>> {
    let mut groups: BTreeMap<Option<i64>, Vec<Case>> = BTreeMap::new();
    for file in FILES {
        let path = format!("{}/tests/vectors/{file}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("read vector file");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("vector file is a JSON list");
        for case in cases {
            let text = |field: &str| case[field].as_str().unwrap_or_default().to_string();
            let mut secrets = vec![text("secret")];
            if let Some(more) = case["fallback_secrets"].as_array() {
                secrets.extend(more.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
            let headers = case["headers"]
                .as_object()
                .expect("headers object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let parsed = Case {
                id: text("id"),
                provider: text("provider"),
                valid: text("expect") == "valid",
                secrets,
                method: text("method"),
                headers,
                body: STANDARD.decode(text("body_base64")).expect("body base64"),
                tolerance: case["tolerance_seconds"].as_u64().unwrap_or(300),
                url: text("url"),
            };
            // Cases without a `now` but with a signed timestamp are checked at that time.
            let now = case["now"].as_i64().or(case["timestamp"].as_i64());
            groups.entry(now).or_default().push(parsed);
        }
    }
    groups
}

/// For a URL-bound provider, the signed URL split into its origin and its path and query.
fn url_parts(case: &Case) -> Option<(String, String)> {
    if case.provider != "twilio" {
        return None;
    }
    let uri: http::Uri = case.url.parse().expect("vector URL");
    let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
    let target = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Some((origin, target))
}

/// Returns the preset a case is configured with. GitHub's legacy cases carry only the SHA-1
/// header, which needs the `github-sha1` opt-in.
fn provider_for(case: &Case) -> &str {
    let has = |name: &str| {
        case.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if case.provider == "github" && has("x-hub-signature") && !has("x-hub-signature-256") {
        "github-sha1"
    } else {
        &case.provider
    }
}

/// Returns whether every secret of the case can become a key. A secret that cannot is a config
/// error that stops start-up, so such a case never reaches a running gateway.
fn secrets_load(case: &Case) -> bool {
    let scheme = Scheme::preset(provider_for(case)).expect("preset exists");
    case.secrets
        .iter()
        .all(|s| scheme.derive_key(s.as_bytes()).is_ok())
}

#[test]
fn every_vector_through_running_gateway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut checked = 0;
    let mut mismatches = Vec::new();

    for (now, cases) in load_cases() {
        let upstream = Upstream::ok();
        let mut routes = String::new();
        for (index, case) in cases.iter().enumerate() {
            if !secrets_load(case) {
                continue;
            }
            // A URL-bound case gets its own host, the signed URL's origin as public_url, and
            // receives the request at the signed path and query.
            let matcher = match url_parts(case) {
                Some((origin, _)) => format!(
                    "host: case{index}.test\n    path_prefix: /\n    public_url: \"{origin}\""
                ),
                None => format!("path: /v/{index}"),
            };
            routes.push_str(&format!(
                "  - name: case{index}\n    {matcher}\n    provider: {}\n    tolerance: {}s\n    upstream: \"{}\"\n    secrets:\n",
                provider_for(case),
                case.tolerance,
                upstream.url()
            ));
            for (n, secret) in case.secrets.iter().enumerate() {
                let file = dir.path().join(format!("{}-{index}-{n}", now.unwrap_or(0)));
                std::fs::write(&file, secret).expect("write secret");
                routes.push_str(&format!("      - file: \"{}\"\n", file.display()));
            }
        }
        // Over a hundred rejected cases come from one client address in a row.
        routes.push_str("defaults:\n  failed_verify_limit: { enabled: false }\n");
        let clock = now.map(|n| n.to_string());
        let args: Vec<&str> = match &clock {
            Some(n) => vec!["--fixed-clock", n],
            None => Vec::new(),
        };
        let gateway = Gateway::start_with(&routes, &args);

        for (index, case) in cases.iter().enumerate() {
            checked += 1;
            if !secrets_load(case) {
                if case.valid {
                    mismatches.push(format!("{}: valid case whose secret is refused", case.id));
                }
                continue;
            }
            let before = upstream.requests().len();
            let headers: Vec<(&str, &str)> = case
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let bytes = match url_parts(case) {
                Some((_, target)) => {
                    let bytes = request(&case.method, &target, &headers, &case.body);
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    text.replacen(
                        "Host: gateway.test\r\n",
                        &format!("Host: case{index}.test\r\n"),
                        1,
                    )
                    .into_bytes()
                }
                None => request(&case.method, &format!("/v/{index}"), &headers, &case.body),
            };
            let response = Connection::open(gateway.addr).send(&bytes);
            let received = upstream.requests();
            let outcome = match (case.valid, response.status) {
                (true, 200)
                    if received.len() == before + 1 && received[before].body == case.body =>
                {
                    None
                }
                (true, status) => Some(format!(
                    "expected forward, got {status} {}",
                    response.body_text()
                )),
                (false, 400..=499) if received.len() == before => None,
                (false, status) => Some(format!(
                    "expected rejection, got {status}, upstream saw {}",
                    received.len() - before
                )),
            };
            if let Some(problem) = outcome {
                mismatches.push(format!("{}: {problem}", case.id));
            }
        }
    }

    assert_eq!(checked, CASES, "every vector case must be checked");
    assert!(
        mismatches.is_empty(),
        "cases that disagree with expect:\n{}",
        mismatches.join("\n")
    );
}
