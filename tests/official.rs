//! Requests signed at the current time by the providers' official libraries (Python: stripe,
//! slack-sdk, standardwebhooks, svix; GitHub's documented hmac recipe) pass through the
//! running gateway unchanged, and their tampered twins are rejected without reaching the
//! upstream. `.ci/run` installs the libraries; see `tests/official/sign.py`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::client::{request, send};
use common::upstream::Upstream;
use common::{now, Gateway};

const SECRETS: &[(&str, &str)] = &[
    ("github", "It's a Secret to Everybody"),
    ("stripe", "whsec_test_0123456789abcdefghijklmnopqrstuv"),
    ("slack", "8f742231b10e8888abcd99yyyzzz85a5"),
    (
        "standard-webhooks",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    ("svix", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
];

fn bodies() -> Vec<Vec<u8>> {
    let large: String = (0..3000)
        .map(|i| format!("{{\"n\":{i},\"s\":\"Kraków 日本語 🚀\"}},"))
        .collect();
    vec![
        br#"{"id":"evt_1","type":"test.event"}"#.to_vec(),
        "{\"name\":\"Zoë\",\"quote\":\"“curly”\"}\n"
            .as_bytes()
            .to_vec(),
        format!("[{}{{}}]", large).into_bytes(),
    ]
}

/// Runs `tests/official/sign.py` and returns the headers it prints.
fn official_headers(
    provider: &str,
    secret: &str,
    body: &[u8],
    id: &str,
) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = dir.path().join("body");
    std::fs::write(&body_file, body).expect("write body");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/official/sign.py");
    let output = Command::new("python3")
        .arg(script)
        .args([provider, secret])
        .arg(&body_file)
        .args([&now().to_string(), id])
        .output()
        .expect("run python3; install it, or run .ci/run, which does");
    assert!(
        output.status.success(),
        "sign.py failed for {provider} (run .ci/run or `pip install -r tests/official/requirements.txt`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("sign.py prints a JSON object")
}

fn routes(upstream: &Upstream, dir: &tempfile::TempDir) -> String {
    let mut routes = String::new();
    for (provider, secret) in SECRETS {
        let file = dir.path().join(provider);
        std::fs::write(&file, secret).expect("write secret");
        routes.push_str(&format!(
            "  - name: {provider}\n    path: /hooks/{provider}\n    provider: {provider}\n    secrets: [ {{ file: \"{}\" }} ]\n    upstream: \"{}\"\n",
            file.display(),
            upstream.url()
        ));
    }
    routes
}

#[test]
fn official_signatures_are_forwarded_and_tampered_twins_rejected() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = Gateway::start(&routes(&upstream, &dir));

    let mut forwarded = 0;
    for (provider, secret) in SECRETS {
        for (n, body) in bodies().iter().enumerate() {
            let id = format!("msg_official_{provider}_{n}");
            let signed = official_headers(provider, secret, body, &id);
            let mut headers: Vec<(&str, &str)> = signed
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            headers.push(("Content-Type", "application/json"));
            let path = format!("/hooks/{provider}");

            let response = send(gateway.addr, &request("POST", &path, &headers, body));
            assert_eq!(
                response.status,
                200,
                "{provider} body {n}: {}",
                response.body_text()
            );
            forwarded += 1;
            let received = upstream.requests();
            assert_eq!(
                received.len(),
                forwarded,
                "{provider} body {n} not forwarded once"
            );
            let last = &received[forwarded - 1];
            assert_eq!(&last.body, body, "{provider} body {n} changed on the way");
            for (name, value) in &signed {
                assert_eq!(
                    last.header(name),
                    vec![value.clone()],
                    "{provider} header {name}"
                );
            }

            let mut tampered = body.clone();
            let middle = tampered.len() / 2;
            tampered[middle] ^= 0x01;
            let response = send(gateway.addr, &request("POST", &path, &headers, &tampered));
            assert_eq!(response.status, 401, "{provider} tampered body {n}");
            assert_eq!(response.reason(), "signature_invalid");
            assert_eq!(
                upstream.requests().len(),
                forwarded,
                "{provider} tampered body {n} reached the upstream"
            );
        }
    }

    let logs = gateway.logs();
    assert!(logs.contains("route loaded"), "debug logs were captured");
    for (provider, secret) in SECRETS {
        assert!(
            !logs.contains(secret),
            "the {provider} secret appears in the logs"
        );
    }
}
