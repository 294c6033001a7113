//! The presets added for provider breadth, public keys, the generic `signature:` rule, full
//! public URLs and sender handshakes, each through the running gateway. Requests are signed
//! by the `hookgate sign` and `hookgate send` commands, and every tampered twin must be
//! rejected before it reaches the upstream.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use common::client::{request, send, Response};
use common::upstream::Upstream;
use common::{closed_port, hmac_sha256, route, Gateway};

const BODY: &[u8] = br#"{"id":"evt_1","type":"test.event","text":"Zo\u00eb"}"#;
/// An Ed25519 seed (RFC 8032, test 1), so the key pair is the same on every run.
const ED25519_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// A preset added for provider breadth, with a secret it accepts and the headers that carry
/// its signature and signed timestamp.
struct Preset {
    name: &'static str,
    secret: &'static str,
    signature: &'static str,
    timestamp: Option<&'static str>,
}

const NEW_PRESETS: &[Preset] = &[
    Preset {
        name: "clerk",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        signature: "svix-signature",
        timestamp: Some("svix-timestamp"),
    },
    Preset {
        name: "resend",
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        signature: "svix-signature",
        timestamp: Some("svix-timestamp"),
    },
    Preset {
        name: "intercom",
        secret: "intercom-client-secret",
        signature: "x-hub-signature",
        timestamp: None,
    },
    Preset {
        name: "typeform",
        secret: "typeform-webhook-secret",
        signature: "typeform-signature",
        timestamp: None,
    },
    Preset {
        name: "vercel",
        secret: "vercel-webhook-secret",
        signature: "x-vercel-signature",
        timestamp: None,
    },
    Preset {
        name: "jira",
        secret: "jira-admin-webhook-secret",
        signature: "x-hub-signature",
        timestamp: None,
    },
    Preset {
        name: "zoom",
        secret: "zoom-secret-token",
        signature: "x-zm-signature",
        timestamp: Some("x-zm-request-timestamp"),
    },
    Preset {
        name: "twitter",
        secret: "twitter-consumer-secret",
        signature: "x-twitter-webhooks-signature",
        timestamp: None,
    },
    Preset {
        name: "x",
        secret: "x-consumer-secret",
        signature: "x-twitter-webhooks-signature",
        timestamp: None,
    },
];

/// Runs the `hookgate` binary with `args` and `env`.
fn hookgate(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run hookgate")
}

/// Runs `hookgate sign` and returns the `name: value` lines it prints.
fn sign(args: &[&str], env: &[(&str, &str)]) -> Vec<(String, String)> {
    let output = hookgate(&[&["sign"], args].concat(), env);
    assert!(
        output.status.success(),
        "hookgate sign {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn write(dir: &Path, name: &str, contents: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path.display().to_string()
}

fn post(gateway: &Gateway, path: &str, headers: &[(String, String)], body: &[u8]) -> Response {
    let mut pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.push(("Content-Type", "application/json"));
    send(gateway.addr, &request("POST", path, &pairs, body))
}

/// Replaces the value of header `name` using `change`.
fn with_header(
    headers: &[(String, String)],
    name: &str,
    change: impl Fn(&str) -> String,
) -> Vec<(String, String)> {
    let mut changed = headers.to_vec();
    let entry = changed
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"));
    entry.1 = change(&entry.1);
    changed
}

/// Changes the middle character of a signature to another character of the hex and base64
/// alphabets, so the signature still decodes but no longer matches.
fn flip_middle(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let middle = chars.len() * 2 / 3;
    chars[middle] = match chars[middle] {
        '0' => '1',
        c if c.is_ascii_digit() || ('a'..='f').contains(&c) => '0',
        'A' => 'B',
        _ => 'A',
    };
    chars.into_iter().collect()
}

/// Asserts a 401 `signature_invalid` that never reached the upstream.
fn assert_rejected(response: &Response, upstream: &Upstream, forwarded: usize, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body_text());
    assert_eq!(response.reason(), "signature_invalid", "{what}");
    assert_eq!(
        upstream.requests().len(),
        forwarded,
        "{what} reached the upstream"
    );
}

#[test]
fn new_presets_sign_verify_and_reject_tampered_twins() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = write(dir.path(), "body.json", BODY);
    let mut routes = String::new();
    let mut env = Vec::new();
    for preset in NEW_PRESETS {
        let variable = format!("SECRET_{}", preset.name.to_ascii_uppercase());
        routes.push_str(&route(&[
            &format!("name: {}", preset.name),
            &format!("path: /hooks/{}", preset.name),
            &format!("provider: {}", preset.name),
            &format!("secrets: [ {{ env: {variable} }} ]"),
            &format!("upstream: \"{}\"", upstream.url()),
        ]));
        env.push((variable, preset.secret));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let gateway = Gateway::start_env(&routes, &env);

    let mut forwarded = 0;
    for preset in NEW_PRESETS {
        let variable = format!("SECRET_{}", preset.name.to_ascii_uppercase());
        let args = [
            "--provider",
            preset.name,
            "--secret-env",
            &variable,
            &body_file,
        ];
        let headers = sign(&args, &env);
        let path = format!("/hooks/{}", preset.name);

        let response = post(&gateway, &path, &headers, BODY);

        assert_eq!(
            response.status,
            200,
            "{}: {}",
            preset.name,
            response.body_text()
        );
        forwarded += 1;
        let received = upstream.requests();
        assert_eq!(
            received.len(),
            forwarded,
            "{} not forwarded once",
            preset.name
        );
        assert_eq!(
            received[forwarded - 1].body,
            BODY,
            "{} body changed",
            preset.name
        );

        let mut body = BODY.to_vec();
        body[10] ^= 0x01;
        let response = post(&gateway, &path, &headers, &body);
        assert_rejected(
            &response,
            &upstream,
            forwarded,
            &format!("{} body", preset.name),
        );

        let forged = with_header(&headers, preset.signature, flip_middle);
        let response = post(&gateway, &path, &forged, BODY);
        let what = format!("{} signature", preset.name);
        assert_rejected(&response, &upstream, forwarded, &what);

        if let Some(timestamp) = preset.timestamp {
            let later = with_header(&headers, timestamp, |t| {
                (t.parse::<i64>().expect("integer timestamp") + 1).to_string()
            });
            let response = post(&gateway, &path, &later, BODY);
            let what = format!("{} timestamp", preset.name);
            assert_rejected(&response, &upstream, forwarded, &what);
        }
    }
    let logs = gateway.logs();
    for preset in NEW_PRESETS {
        assert!(
            !logs.contains(preset.secret),
            "{} secret in logs",
            preset.name
        );
    }
}

#[test]
fn send_posts_signed_request_to_gateway() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = write(dir.path(), "body.json", BODY);
    let routes = route(&[
        "name: typeform",
        "path: /hooks/typeform",
        "provider: typeform",
        "secrets: [ { env: TYPEFORM_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let env = [("TYPEFORM_SECRET", "typeform-webhook-secret")];
    let gateway = Gateway::start_env(&routes, &env);
    let to = gateway.url("/hooks/typeform");

    let sent = hookgate(
        &[
            "send",
            "--provider",
            "typeform",
            "--secret-env",
            "TYPEFORM_SECRET",
            "--to",
            &to,
            &body_file,
        ],
        &env,
    );
    let wrong = hookgate(
        &[
            "send",
            "--provider",
            "typeform",
            "--secret-env",
            "WRONG",
            "--to",
            &to,
            &body_file,
        ],
        &[("WRONG", "not-the-secret")],
    );

    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(stdout.starts_with("HTTP 200"), "{stdout}");
    assert!(!wrong.status.success(), "a wrong secret was accepted");
    assert!(String::from_utf8_lossy(&wrong.stdout).starts_with("HTTP 401"));
    let received = upstream.requests();
    assert_eq!(
        received.len(),
        1,
        "only the correctly signed request is forwarded"
    );
    assert_eq!(received[0].body, BODY);
}

#[test]
fn sign_route_curl_reaches_config_listener() {
    let upstream = Upstream::ok();
    let port = closed_port();
    let routes = route(&[
        "name: github",
        "path: /hooks/github",
        "provider: github",
        "secrets: [ { env: GITHUB_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let env = [("GITHUB_SECRET", "github-webhook-secret")];
    let listener = format!("127.0.0.1:{port}");
    let gateway = Gateway::start_listening(&[&listener], &format!("routes:\n{routes}"), &env);
    let config = gateway.config_path.display().to_string();

    let signed = hookgate(&["sign", "-c", &config, "--route", "github"], &env);
    let curl = String::from_utf8_lossy(&signed.stdout).to_string();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert!(
        curl.contains(&format!("'http://{listener}/hooks/github'")),
        "{curl}"
    );
    let sent = Command::new("sh")
        .args(["-c", &curl])
        .output()
        .expect("run the printed curl command");

    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(upstream.requests().len(), 1, "{curl}");
}

#[test]
fn sign_route_rejects_port_zero_without_gateway() {
    let routes = route(&[
        "name: github",
        "path: /hooks/github",
        "provider: github",
        "secrets: [ { env: GITHUB_SECRET } ]",
        "upstream: \"http://127.0.0.1:9\"",
    ]);
    let env = [("GITHUB_SECRET", "github-webhook-secret")];
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(
        dir.path(),
        "gateway.yaml",
        format!("listeners: [ {{ address: \"127.0.0.1:0\" }} ]\nroutes:\n{routes}").as_bytes(),
    );

    let output = hookgate(&["sign", "-c", &config, "--route", "github"], &env);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("--gateway"), "{stderr}");
}

#[test]
fn sign_route_curl_sends_content_type() {
    let routes = route(&[
        "name: github",
        "path: /hooks/github",
        "provider: github",
        "secrets: [ { env: GITHUB_SECRET } ]",
        "upstream: \"http://127.0.0.1:9\"",
    ]);
    let env = [("GITHUB_SECRET", "github-webhook-secret")];
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write(
        dir.path(),
        "gateway.yaml",
        format!("listeners: [ {{ address: \"127.0.0.1:8080\" }} ]\nroutes:\n{routes}").as_bytes(),
    );

    let default = hookgate(&["sign", "-c", &config, "--route", "github"], &env);
    let form = hookgate(
        &[
            "sign",
            "-c",
            &config,
            "--route",
            "github",
            "--content-type",
            "application/x-www-form-urlencoded",
        ],
        &env,
    );

    let default = String::from_utf8_lossy(&default.stdout);
    let form = String::from_utf8_lossy(&form.stdout);
    assert!(
        default.contains("-H 'Content-Type: application/json'"),
        "{default}"
    );
    assert!(
        form.contains("-H 'Content-Type: application/x-www-form-urlencoded'"),
        "{form}"
    );
    assert!(!form.contains("application/json"), "{form}");
}

#[test]
fn send_route_signs_url_gateway_checks() {
    let upstream = Upstream::ok();
    let url_rule = [
        "hmac:",
        "  algorithm: sha256",
        "  header: X-Signature",
        "  encoding: hex",
        "  signed: \"{url}.{body}\"",
    ];
    let mut routes = route(&[
        "name: twilio",
        "path: /hooks/twilio",
        "provider: twilio",
        "secrets: [ { env: ROUTE_SECRET } ]",
        "public_url: \"https://hooks.example.com/hooks/twilio\"",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    for (name, public_url) in [
        ("origin", "https://hooks.example.com"),
        ("full", "https://example.com/senders/full"),
    ] {
        let mut lines = vec![
            format!("name: {name}"),
            format!("path_prefix: /hooks/{name}/"),
        ];
        lines.extend(url_rule.iter().map(|line| line.to_string()));
        lines.push("secrets: [ { env: ROUTE_SECRET } ]".to_string());
        lines.push(format!("public_url: \"{public_url}\""));
        lines.push(format!("upstream: \"{}\"", upstream.url()));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        routes.push_str(&route(&lines));
    }
    let env = [("ROUTE_SECRET", "route-url-secret")];
    let gateway = Gateway::start_env(&routes, &env);
    let config = gateway.config_path.display().to_string();

    for (name, path) in [
        ("twilio", "/hooks/twilio?n=1"),
        ("origin", "/hooks/origin/a?n=2"),
        ("full", "/hooks/full/b?n=3"),
    ] {
        let to = gateway.url(path);
        let sent = hookgate(
            &[
                "send",
                "-c",
                &config,
                "--route",
                name,
                "--content-type",
                "application/x-www-form-urlencoded",
                "--data",
                &format!("route={name}"),
                "--to",
                &to,
            ],
            &env,
        );

        let stdout = String::from_utf8_lossy(&sent.stdout);
        assert!(stdout.starts_with("HTTP 200"), "{name}: {stdout}");
    }
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn secret_file_with_crlf_signs_like_route() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = write(dir.path(), "github.secret", b"crlf-secret\r\n");
    let routes = route(&[
        "name: github",
        "path: /hooks/github",
        "provider: github",
        &format!("secrets: [ {{ file: \"{secret_file}\" }} ]"),
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let gateway = Gateway::start(&routes);
    let to = gateway.url("/hooks/github");

    let sent = hookgate(
        &[
            "send",
            "--provider",
            "github",
            "--secret-file",
            &secret_file,
            "--to",
            &to,
        ],
        &[],
    );

    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(stdout.starts_with("HTTP 200"), "{stdout}");
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn zoom_url_validation_answered_by_gateway() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: zoom",
        "path: /hooks/zoom",
        "provider: zoom",
        "secrets: [ { env: ZOOM_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let gateway = Gateway::start_env(&routes, &[("ZOOM_SECRET", "zoom-secret-token")]);
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let forged = br#"{"payload":{"plainToken":"v0:1:{}"},"event":"endpoint.url_validation"}"#;

    let response = post(&gateway, "/hooks/zoom", &[], body);
    let rejected = post(&gateway, "/hooks/zoom", &[], forged);

    assert_eq!(response.status, 200, "{}", response.body_text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON response");
    let expected = hex::encode(hmac_sha256(
        b"zoom-secret-token",
        &[b"qgg8vlvZRS6UYooatFL8Aw"],
    ));
    assert_eq!(json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(json["encryptedToken"], expected.as_str());
    assert_eq!(rejected.status, 400, "{}", rejected.body_text());
    assert_eq!(
        upstream.requests().len(),
        0,
        "a handshake reached the upstream"
    );
}

#[test]
fn twitter_crc_answered_by_gateway() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: x",
        "path: /hooks/x",
        "provider: x",
        "secrets: [ { env: X_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let secret = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu";
    let gateway = Gateway::start_env(&routes, &[("X_SECRET", secret)]);
    let token = "9b4507b3-9040-4669-9ca3-6b94edb50553";

    let path = format!("/hooks/x?crc_token={token}");
    let response = send(gateway.addr, &request("GET", &path, &[], b""));
    let rejected = send(
        gateway.addr,
        &request("GET", "/hooks/x?crc_token=%7B%7D", &[], b""),
    );
    let plain_get = send(gateway.addr, &request("GET", "/hooks/x", &[], b""));

    assert_eq!(response.status, 200, "{}", response.body_text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON response");
    let mac = hmac_sha256(secret.as_bytes(), &[token.as_bytes()]);
    let expected = format!("sha256={}", STANDARD.encode(mac));
    assert_eq!(json["response_token"], expected.as_str());
    assert_eq!(rejected.status, 400, "{}", rejected.body_text());
    assert_eq!(
        plain_get.status, 405,
        "a GET without crc_token is not a handshake"
    );
    assert_eq!(
        upstream.requests().len(),
        0,
        "a handshake reached the upstream"
    );
}

#[test]
fn twitter_crc_response_signs_no_delivery() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: x",
        "path: /hooks/x",
        "provider: x",
        "secrets: [ { env: X_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let secret = "x-consumer-secret";
    let gateway = Gateway::start_env(&routes, &[("X_SECRET", secret)]);
    let signature = "x-twitter-webhooks-signature".to_string();

    for token in ["true", "42", "null", "AAAA"] {
        let path = format!("/hooks/x?crc_token={token}");
        let crc = send(gateway.addr, &request("GET", &path, &[], b""));
        assert_eq!(crc.status, 200, "{token}: {}", crc.body_text());
        let json: serde_json::Value = serde_json::from_slice(&crc.body).expect("JSON response");
        let response_token = json["response_token"].as_str().unwrap_or_default();

        let delivery = post(
            &gateway,
            "/hooks/x",
            &[(signature.clone(), response_token.to_string())],
            token.as_bytes(),
        );

        assert_rejected(&delivery, &upstream, 0, token);
    }

    let mac = hmac_sha256(secret.as_bytes(), &[BODY]);
    let value = format!("sha256={}", STANDARD.encode(mac));
    let delivery = post(&gateway, "/hooks/x", &[(signature, value)], BODY);
    assert_eq!(delivery.status, 200, "{}", delivery.body_text());
    assert_eq!(upstream.requests().len(), 1, "a JSON delivery is forwarded");
}

#[test]
fn body_zero_moved_into_timestamp_rejected() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: crm",
        "path: /hooks/crm",
        "hmac:",
        "  algorithm: sha256",
        "  header: X-Signature",
        "  encoding: hex",
        "  signed: \"{body}{timestamp}\"",
        "  timestamp_header: X-Timestamp",
        "secrets: [ { env: CRM_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let secret = "crm-secret";
    let gateway = Gateway::start_env(&routes, &[("CRM_SECRET", secret)]);
    let timestamp = common::now().to_string();
    let body = b"amount=100";
    let mac = hex::encode(hmac_sha256(
        secret.as_bytes(),
        &[body, timestamp.as_bytes()],
    ));
    let signature = ("X-Signature".to_string(), mac);

    // The same signed bytes, split as `amount=10` and `0<timestamp>`.
    let moved = post(
        &gateway,
        "/hooks/crm",
        &[
            signature.clone(),
            ("X-Timestamp".to_string(), format!("0{timestamp}")),
        ],
        b"amount=10",
    );
    let intact = post(
        &gateway,
        "/hooks/crm",
        &[signature, ("X-Timestamp".to_string(), timestamp)],
        body,
    );

    assert_eq!(moved.status, 400, "{}", moved.body_text());
    assert_eq!(moved.reason(), "timestamp_malformed");
    assert_eq!(intact.status, 200, "{}", intact.body_text());
    let received = upstream.requests();
    assert_eq!(received.len(), 1, "only the intact request is forwarded");
    assert_eq!(received[0].body, body);
}

#[test]
fn slack_url_verification_is_verified_and_forwarded() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: slack",
        "path: /hooks/slack",
        "provider: slack",
        "secrets: [ { env: SLACK_SECRET } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let gateway = Gateway::start_env(&routes, &[("SLACK_SECRET", secret)]);
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let now = common::now();
    let signed = vec![
        ("X-Slack-Request-Timestamp".to_string(), now.to_string()),
        (
            "X-Slack-Signature".to_string(),
            common::slack_signature(secret, now, body),
        ),
    ];

    let response = post(&gateway, "/hooks/slack", &signed, body);
    let unsigned = post(&gateway, "/hooks/slack", &signed[..1], body);

    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(unsigned.status, 401);
    assert_eq!(unsigned.reason(), "signature_missing");
    let received = upstream.requests();
    assert_eq!(received.len(), 1, "only the signed challenge is forwarded");
    assert_eq!(received[0].body, body);
}

#[test]
fn public_keys_verify_discord_and_v1a() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = write(dir.path(), "body.json", BODY);
    let seed_file = write(dir.path(), "ed25519.seed", ED25519_SEED.as_bytes());
    let mut seed = [0u8; 32];
    hex::decode_to_slice(ED25519_SEED, &mut seed).expect("hex seed");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let whpk = format!("whpk_{}", STANDARD.encode(public.to_bytes()));
    let routes = [
        route(&[
            "name: discord",
            "path: /hooks/discord",
            "provider: discord",
            "public_keys: [ { env: DISCORD_KEY } ]",
            &format!("upstream: \"{}\"", upstream.url()),
        ]),
        route(&[
            "name: standard",
            "path: /hooks/standard",
            "provider: standard-webhooks",
            "secrets: [ { env: STANDARD_SECRET } ]",
            "public_keys: [ { env: STANDARD_KEY, name: ed25519 } ]",
            &format!("upstream: \"{}\"", upstream.url()),
        ]),
    ]
    .concat();
    let public_hex = hex::encode(public.to_bytes());
    let env = [
        ("DISCORD_KEY", public_hex.as_str()),
        ("STANDARD_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("STANDARD_KEY", whpk.as_str()),
    ];
    let gateway = Gateway::start_env(&routes, &env);

    let mut forwarded = 0;
    for (provider, path, timestamp) in [
        ("discord", "/hooks/discord", "x-signature-timestamp"),
        ("standard-webhooks", "/hooks/standard", "webhook-timestamp"),
    ] {
        let args = [
            "--provider",
            provider,
            "--private-key-file",
            &seed_file,
            &body_file,
        ];
        let headers = sign(&args, &[]);

        let response = post(&gateway, path, &headers, BODY);

        assert_eq!(response.status, 200, "{provider}: {}", response.body_text());
        forwarded += 1;
        assert_eq!(
            upstream.requests().len(),
            forwarded,
            "{provider} not forwarded"
        );
        let response = post(&gateway, path, &headers, b"{}");
        assert_rejected(&response, &upstream, forwarded, &format!("{provider} body"));
        let later = with_header(&headers, timestamp, |t| {
            (t.parse::<i64>().expect("integer timestamp") + 1).to_string()
        });
        let response = post(&gateway, path, &later, BODY);
        assert_rejected(
            &response,
            &upstream,
            forwarded,
            &format!("{provider} timestamp"),
        );
    }
    let metrics = gateway.metrics();
    assert!(
        metrics.contains("secret=\"ed25519\""),
        "the v1a match is counted under the public key's name"
    );
}

/// Returns a private key as PKCS#8 PEM and its public key as SubjectPublicKeyInfo PEM.
fn key_pair(algorithm: &str) -> (String, String) {
    match algorithm {
        "ed25519" => {
            let mut seed = [0u8; 32];
            hex::decode_to_slice(ED25519_SEED, &mut seed).expect("hex seed");
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            (
                key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string(),
                key.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("PEM"),
            )
        }
        "ecdsa-p256-sha256" => {
            let key = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("P-256 key");
            (
                key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string(),
                key.verifying_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("PEM"),
            )
        }
        _ => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("RSA key");
            (
                key.to_pkcs8_pem(LineEnding::LF).expect("PEM").to_string(),
                key.to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("PEM"),
            )
        }
    }
}

#[test]
fn signature_rules_verify_through_gateway() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = write(dir.path(), "body.json", BODY);
    let algorithms = [
        ("ed25519", "hex"),
        ("ecdsa-p256-sha256", "base64"),
        ("rsa-pkcs1v15-sha256", "base64url"),
        ("rsa-pss-sha256", "base64"),
    ];
    let mut routes = String::new();
    let mut private_files = Vec::new();
    for (algorithm, encoding) in algorithms {
        let (private_pem, public_pem) = key_pair(algorithm);
        let public_file = write(
            dir.path(),
            &format!("{algorithm}.pub"),
            public_pem.as_bytes(),
        );
        private_files.push(write(
            dir.path(),
            &format!("{algorithm}.key"),
            private_pem.as_bytes(),
        ));
        routes.push_str(&route(&[
            &format!("name: {algorithm}"),
            &format!("path: /hooks/{algorithm}"),
            "signature:",
            &format!("  algorithm: {algorithm}"),
            "  header: X-Signature",
            "  prefix: \"v1=\"",
            &format!("  encoding: {encoding}"),
            "  signed: \"{timestamp}.{body}\"",
            "  timestamp_header: X-Timestamp",
            &format!("public_keys: [ {{ file: \"{public_file}\" }} ]"),
            &format!("upstream: \"{}\"", upstream.url()),
        ]));
    }
    let gateway = Gateway::start(&routes);
    let config = gateway.config_path.display().to_string();
    let base_url = format!("http://{}", gateway.addr);

    let mut forwarded = 0;
    for ((algorithm, _), private_file) in algorithms.iter().zip(&private_files) {
        let args = [
            "-c",
            &config,
            "--gateway",
            &base_url,
            "--route",
            algorithm,
            "--private-key-file",
            private_file,
            &body_file,
        ];
        let output = hookgate(&[&["sign"], &args[..]].concat(), &[]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let curl = String::from_utf8_lossy(&output.stdout).to_string();
        let headers: Vec<(String, String)> = curl
            .split(" -H '")
            .skip(2)
            .filter_map(|part| part.split_once('\''))
            .filter_map(|(header, _)| header.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let path = format!("/hooks/{algorithm}");

        let response = post(&gateway, &path, &headers, BODY);

        assert_eq!(
            response.status,
            200,
            "{algorithm}: {} {curl}",
            response.body_text()
        );
        forwarded += 1;
        assert_eq!(
            upstream.requests().len(),
            forwarded,
            "{algorithm} not forwarded"
        );
        let response = post(&gateway, &path, &headers, b"{}");
        assert_rejected(
            &response,
            &upstream,
            forwarded,
            &format!("{algorithm} body"),
        );
        let later = with_header(&headers, "X-Timestamp", |t| {
            (t.parse::<i64>().expect("integer timestamp") + 1).to_string()
        });
        let response = post(&gateway, &path, &later, BODY);
        assert_rejected(
            &response,
            &upstream,
            forwarded,
            &format!("{algorithm} timestamp"),
        );
    }
}

#[test]
fn full_public_url_is_signed_with_received_query() {
    let upstream = Upstream::ok();
    let routes = route(&[
        "name: twilio",
        "path: /twilio",
        "provider: twilio",
        "public_url: \"https://example.com/hooks/twilio\"",
        "secrets: [ { env: TWILIO_TOKEN } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let env = [("TWILIO_TOKEN", "12345")];
    let gateway = Gateway::start_env(&routes, &env);
    let dir = tempfile::tempdir().expect("temp dir");
    let form = b"Digits=1234&From=%2B14158675309";
    let body_file = write(dir.path(), "form", form);
    let public = "https://example.com/hooks/twilio?foo=1";
    let seen = format!("http://{}/twilio?foo=1", gateway.addr);

    let signed = sign(
        &[
            "--provider",
            "twilio",
            "--secret-env",
            "TWILIO_TOKEN",
            "--url",
            public,
            &body_file,
        ],
        &env,
    );
    let wrong_url = sign(
        &[
            "--provider",
            "twilio",
            "--secret-env",
            "TWILIO_TOKEN",
            "--url",
            &seen,
            &body_file,
        ],
        &env,
    );
    let mut headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    let response = send(
        gateway.addr,
        &request("POST", "/twilio?foo=1", &headers, form),
    );
    let other_query = send(
        gateway.addr,
        &request("POST", "/twilio?foo=2", &headers, form),
    );
    let mut wrong: Vec<(&str, &str)> = wrong_url
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    wrong.push(("Content-Type", "application/x-www-form-urlencoded"));
    let gateway_url = send(
        gateway.addr,
        &request("POST", "/twilio?foo=1", &wrong, form),
    );

    assert_eq!(response.status, 200, "{}", response.body_text());
    assert_eq!(other_query.status, 401, "the received query is signed");
    assert_eq!(
        gateway_url.status, 401,
        "the URL the gateway sees is not the public one"
    );
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn check_rejects_keys_in_the_wrong_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = write(dir.path(), "key", b"not-a-public-key");
    let routes = [
        route(&[
            "name: github",
            "path: /hooks/github",
            "provider: github",
            &format!("public_keys: [ {{ file: \"{key}\" }} ]"),
            "upstream: \"http://127.0.0.1:9\"",
        ]),
        route(&[
            "name: signed",
            "path: /hooks/signed",
            "signature:",
            "  algorithm: rsa-pss-sha512",
            "  header: X-Signature",
            "  encoding: base64",
            &format!("public_keys: [ {{ file: \"{key}\" }} ]"),
            "upstream: \"http://127.0.0.1:9\"",
        ]),
        route(&[
            "name: both",
            "path: /hooks/both",
            "provider: discord",
            "signature:",
            "  algorithm: ed25519",
            "  header: X-Signature",
            "  encoding: hex",
            &format!("public_keys: [ {{ file: \"{key}\" }} ]"),
            "upstream: \"http://127.0.0.1:9\"",
        ]),
        route(&[
            "name: twilio",
            "path: /hooks/twilio",
            "provider: twilio",
            "public_url: \"ftp://hooks.example.com/twilio\"",
            &format!("secrets: [ {{ file: \"{key}\" }} ]"),
            "upstream: \"http://127.0.0.1:9\"",
        ]),
    ]
    .concat();
    let config = format!("listeners:\n  - address: \"127.0.0.1:0\"\nroutes:\n{routes}");
    let path = write(dir.path(), "gateway.yaml", config.as_bytes());

    let output = hookgate(&["check", "-c", &path], &[]);

    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let wrong_list = format!(
        "{path}:7:20: routes[0].public_keys[0]: file {key}: this provider verifies with a shared secret"
    );
    assert!(errors.contains(&wrong_list), "{errors}");
    assert!(
        errors.contains("move the entry from `public_keys:` to `secrets:`"),
        "{errors}"
    );
    assert!(
        errors.contains("routes[1].signature.algorithm: unknown algorithm \"rsa-pss-sha512\"; use ed25519, ecdsa-p256-sha256, rsa-pkcs1v15-sha256, rsa-pss-sha256"),
        "{errors}"
    );
    assert!(
        errors.contains("routes[2]: give one of `provider:`, `hmac:` or `signature:`, not several"),
        "{errors}"
    );
    assert!(
        errors.contains("routes[3].public_url: invalid public_url \"ftp://hooks.example.com/twilio\": the scheme must be http or https"),
        "{errors}"
    );
    assert!(
        !errors.contains("not-a-public-key"),
        "key contents echoed: {errors}"
    );
}

/// Returns a value that the route of `variable` accepts, for the examples in
/// `docs/providers.md`.
fn example_key(variable: &str, rsa_public_pem: &str) -> String {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(ED25519_SEED, &mut seed).expect("hex seed");
    let ed25519 = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    match variable {
        "WEBHOOK_PUBLIC_KEY" => format!("whpk_{}", STANDARD.encode(ed25519)),
        "DISCORD_PUBLIC_KEY" => hex::encode(ed25519),
        "PAYMENTS_PUBLIC_KEY" => rsa_public_pem.to_string(),
        // SendGrid's published test verification key.
        "SENDGRID_VERIFICATION_KEY" => "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==".to_string(),
        "WEBHOOK_SECRET"
        | "SVIX_WEBHOOK_SECRET"
        | "CLERK_WEBHOOK_SIGNING_SECRET"
        | "RESEND_WEBHOOK_SECRET" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        _ => "example-secret-value".to_string(),
    }
}

#[test]
fn provider_docs_examples_pass_check() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/providers.md"))
        .expect("read docs/providers.md");
    // Blocks that read a key from a file name paths of a real deployment, which do not exist here.
    let blocks: Vec<&str> = docs
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .filter(|block| block.starts_with("  - name:") && !block.contains("file:"))
        .collect();
    let variables: Vec<&str> = blocks
        .iter()
        .flat_map(|block| block.split("env: ").skip(1))
        .filter_map(|rest| rest.split([' ', '}']).next())
        .collect();
    let (_, rsa_public_pem) = key_pair("rsa-pss-sha256");
    let env: Vec<(String, String)> = variables
        .iter()
        .map(|variable| (variable.to_string(), example_key(variable, &rsa_public_pem)))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\nroutes:\n{}",
        blocks.concat()
    );
    let path = write(dir.path(), "gateway.yaml", config.as_bytes());

    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = hookgate(&["check", "-c", &path], &env);

    let expected_routes = hookgate_presets() + 2;
    assert_eq!(
        blocks.len(),
        expected_routes,
        "one example per preset and per generic rule"
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("ok, 1 listener(s), {expected_routes} route(s)")),
        "{stdout}"
    );
}

/// Returns how many presets `hookgate providers` lists, aliases not counted.
fn hookgate_presets() -> usize {
    let output = hookgate(&["providers"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    last.split(' ')
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no preset count in {last:?}"))
}

#[test]
fn providers_lists_headers_algorithm_and_tolerance() {
    let output = hookgate(&["providers"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = |name: &str| -> String {
        stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{stdout}"))
            .to_string()
    };

    assert!(output.status.success());
    assert!(hookgate_presets() >= 30, "{stdout}");
    for preset in NEW_PRESETS.iter().filter(|preset| preset.name != "x") {
        assert!(
            line(preset.name).contains(preset.signature),
            "{}",
            preset.name
        );
    }
    assert!(line("x").contains("same as twitter"));
    let zoom = line("zoom");
    assert!(zoom.contains("HMAC-SHA256"), "{zoom}");
    assert!(zoom.contains("300s"), "{zoom}");
    assert!(zoom.contains("x-zm-request-timestamp"), "{zoom}");
    let vercel = line("vercel");
    assert!(vercel.contains("HMAC-SHA1"), "{vercel}");
    assert!(!vercel.contains("300s"), "{vercel}");
    assert!(line("discord").contains("public_keys"));
    assert!(line("twilio").contains("needs public_url:"));
}

#[test]
fn sign_explains_which_key_it_needs() {
    let env = [("SECRET", "a-shared-secret")];

    let discord = hookgate(
        &["sign", "--provider", "discord", "--secret-env", "SECRET"],
        &env,
    );
    let twilio = hookgate(
        &["sign", "--provider", "twilio", "--secret-env", "SECRET"],
        &env,
    );
    let unknown = hookgate(
        &["sign", "--provider", "nope", "--secret-env", "SECRET"],
        &env,
    );

    let stderr = |output: &Output| String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!discord.status.success());
    assert!(
        stderr(&discord).contains("pass it with --private-key-file"),
        "{}",
        stderr(&discord)
    );
    assert!(!twilio.status.success());
    assert!(
        stderr(&twilio).contains("pass it with --url"),
        "{}",
        stderr(&twilio)
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("run `hookgate providers` for the list"),
        "{}",
        stderr(&unknown)
    );
    assert!(!stderr(&discord).contains("a-shared-secret"));
}

#[test]
fn sign_route_with_only_public_key_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(ED25519_SEED, &mut seed).expect("hex seed");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    let whpk = format!("whpk_{}", STANDARD.encode(public.to_bytes()));
    let config = format!(
        "listeners:\n  - address: \"127.0.0.1:0\"\nroutes:\n{}",
        route(&[
            "name: events",
            "path: /hooks/events",
            "provider: standard-webhooks",
            "public_keys: [ { env: EVENTS_PUBLIC_KEY } ]",
            "upstream: \"http://127.0.0.1:3000\"",
        ])
    );
    let config_path = write(dir.path(), "gateway.yaml", config.as_bytes());
    let env = [("EVENTS_PUBLIC_KEY", whpk.as_str())];

    let output = hookgate(&["sign", "-c", &config_path, "--route", "events"], &env);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains("--private-key-file"), "{stderr}");
    assert!(output.stdout.is_empty(), "no curl command is printed");
}

#[test]
fn send_signs_mailgun_fields_in_the_body() {
    let upstream = Upstream::ok();
    let dir = tempfile::tempdir().expect("temp dir");
    let body_file = write(
        dir.path(),
        "body.json",
        br#"{"event-data":{"event":"delivered"}}"#,
    );
    let routes = route(&[
        "name: mailgun",
        "path: /hooks/mailgun",
        "provider: mailgun",
        "secrets: [ { env: MAILGUN_KEY } ]",
        &format!("upstream: \"{}\"", upstream.url()),
    ]);
    let env = [("MAILGUN_KEY", "key-mailgun-signing")];
    let gateway = Gateway::start_env(&routes, &env);
    let to = gateway.url("/hooks/mailgun");

    let sent = hookgate(
        &[
            "send",
            "--provider",
            "mailgun",
            "--secret-env",
            "MAILGUN_KEY",
            "--to",
            &to,
            &body_file,
        ],
        &env,
    );
    let printed = hookgate(
        &[
            "sign",
            "--provider",
            "mailgun",
            "--secret-env",
            "MAILGUN_KEY",
            &body_file,
        ],
        &env,
    );

    let stdout = String::from_utf8_lossy(&sent.stdout);
    assert!(
        stdout.starts_with("HTTP 200"),
        "{stdout} {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let received = upstream.requests();
    assert_eq!(received.len(), 1);
    let json: serde_json::Value = serde_json::from_slice(&received[0].body).expect("JSON body");
    assert_eq!(json["event-data"]["event"], "delivered");
    assert!(json["signature"]["signature"].is_string(), "{json}");
    let printed: serde_json::Value =
        serde_json::from_slice(&printed.stdout).expect("sign prints the signed body");
    assert!(printed["signature"]["token"].is_string(), "{printed}");
}
