//! `hookgate check` on the shipped config and on broken configs: exit status and every
//! error message, with its file, line, column and key path.

use std::path::Path;
use std::process::{Command, Output};

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["check", "-c"])
        .arg(path)
        .env_remove("HG_CHECK_UNSET")
        .output()
        .expect("run hookgate check")
}

/// Writes `yaml` to a temp file, runs `check` on it and returns (exit success, stderr).
fn check_text(yaml: &str) -> (bool, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let output = check(&path);
    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");
    (output.status.success(), stderr, dir)
}

const VALID_ROUTE: &str = "  - name: github
    path: /hooks/github
    provider: github
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
";

#[test]
fn shipped_config_passes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.yaml");
    let output = check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("ok, 1 listener(s), 4 route(s)"), "{stdout}");
}

#[test]
fn every_example_config_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let entries = std::fs::read_dir(&dir).expect("docs/examples exists");
    let mut checked = 0;
    for entry in entries {
        let path = entry.expect("dir entry").path();
        // The examples take their secrets from these variables, as a deployment would.
        let output = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["check", "-c"])
            .arg(&path)
            .envs(
                EXAMPLE_SECRETS
                    .iter()
                    .map(|name| (name, "example-secret-value")),
            )
            .output()
            .expect("run hookgate check");
        checked += 1;
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(checked > 0, "no example configs found");
}

const EXAMPLE_SECRETS: &[&str] = &[
    "GITHUB_WEBHOOK_SECRET",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_WEBHOOK_SECRET_PREVIOUS",
    "CRM_WEBHOOK_SECRET",
];

#[test]
fn reports_every_problem_with_location() {
    let yaml = "\
listeners:
  - address: \"127.0.0.1:8080\"
routes:
  - name: github
    path: /hooks/github
    provider: github
    secrets:
      - env: HG_CHECK_UNSET
      - file: /nonexistent/hookgate-secret
    tolerence: 5m
    upstream: \"ftp://127.0.0.1\"
  - name: github
    path: /hooks/other
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
";
    let (ok, stderr, _dir) = check_text(yaml);
    assert!(!ok, "check must fail");
    let expected = [
        "FILE:8:9: routes[0].secrets[0]: environment variable HG_CHECK_UNSET is not set; export it before starting hookgate",
        "FILE:9:9: routes[0].secrets[1]: cannot read secret file /nonexistent/hookgate-secret: No such file or directory (os error 2); check the path and that hookgate may read the file",
        "FILE:10:5: routes[0].tolerence: unknown key `tolerence`, expected one of",
        "FILE:11:5: routes[0].upstream: invalid upstream URL \"ftp://127.0.0.1\": the scheme must be http or https",
        "FILE:12:5: routes[1].name: duplicate route name \"github\"; route names must be unique",
        "FILE:12:5: routes[1]: route has no signature scheme; add `provider:` (one of github,",
        "FILE: 6 problem(s) found",
    ];
    for line in expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert_eq!(stderr.lines().count(), expected.len(), "{stderr}");
}

#[test]
fn provider_in_wrong_case_names_preset() {
    let yaml = VALID_ROUTE.replace("provider: github", "provider: GitHub");
    let (ok, stderr, _dir) = check_text(&format!(
        "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n{yaml}"
    ));

    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "routes[0].provider: unknown provider \"GitHub\"; provider names are lower case: github"
        ),
        "{stderr}"
    );
}

#[test]
fn reports_yaml_syntax_error_position() {
    let (ok, stderr, _dir) = check_text("listeners:\n  - address: [unclosed\nroutes: []\n");
    assert!(!ok);
    assert!(stderr.starts_with("FILE:3:"), "{stderr}");
    assert!(stderr.contains("invalid YAML"), "{stderr}");
}

#[test]
fn reports_missing_listeners_and_routes() {
    let (ok, stderr, _dir) = check_text("admin:\n  address: \"127.0.0.1:9090\"\n");
    assert!(!ok);
    assert!(stderr.contains("listeners: no listeners; add"), "{stderr}");
    assert!(
        stderr.contains("routes: no routes; add at least one route"),
        "{stderr}"
    );
}

#[test]
fn reports_invalid_values() {
    let yaml = format!(
        "listeners:\n  - address: \"localhost:80\"\nroutes:\n{VALID_ROUTE}{}",
        "  - name: Bad Name
    path: hooks/x
    provider: gitbub
    secrets: [ { env: PATH } ]
    max_body: 1 megabyte
    tolerance: soon
    upstream: \"http://127.0.0.1:3000/prefix\"
  - name: crm
    path_prefix: /crm/
    hmac:
      algorithm: md5
      header: X-Sig
      encoding: hex
    secrets: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
"
    );
    let (ok, stderr, _dir) = check_text(&yaml);
    assert!(!ok);
    let expected = [
        "FILE:2:5: listeners[0].address: invalid address \"localhost:80\"; write IP:PORT",
        "FILE:9:5: routes[1].name: invalid route name \"Bad Name\"; use only a-z, 0-9, `_` and `-`",
        "FILE:10:5: routes[1].path: invalid path \"hooks/x\"; a path starts with `/`",
        "FILE:11:5: routes[1].provider: unknown provider \"gitbub\"; use one of github,",
        "FILE:13:5: routes[1].max_body: invalid size \"1 megabyte\"",
        "FILE:14:5: routes[1].tolerance: invalid duration \"soon\"",
        "FILE:15:5: routes[1].upstream: invalid upstream URL \"http://127.0.0.1:3000/prefix\": a path or query is not supported",
        "FILE:19:7: routes[2].hmac.algorithm: unknown algorithm \"md5\"; use sha1, sha256 or sha512",
    ];
    for line in expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

#[test]
fn rejects_undecodable_standard_webhooks_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "whsec_not*base64\n").expect("write secret");
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: sw\n    path: /sw\n    provider: standard-webhooks\n    secrets: [ {{ file: \"{}\" }} ]\n    upstream: \"http://127.0.0.1:3000\"\n",
        secret.display()
    );
    let (ok, stderr, _dir) = check_text(&yaml);
    assert!(!ok);
    assert!(stderr.contains("routes[0].secrets[0]: file"), "{stderr}");
    assert!(stderr.contains("not valid base64"), "{stderr}");
    assert!(
        !stderr.contains("not*base64"),
        "the secret leaked into the error: {stderr}"
    );
}

#[test]
fn rejects_admin_on_listener_address() {
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:8080\"\nadmin:\n  address: \"127.0.0.1:8080\"\nroutes:\n{VALID_ROUTE}"
    );
    let (ok, stderr, _dir) = check_text(&yaml);
    assert!(!ok);
    assert!(
        stderr.contains("FILE:4:3: admin.address: 127.0.0.1:8080 is also a webhook listener"),
        "{stderr}"
    );
}

#[test]
fn explains_secret_written_as_string() {
    let yaml = "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: a\n    path: /a\n    provider: github\n    secrets: [ GITHUB_WEBHOOK_SECRET ]\n    upstream: \"http://127.0.0.1:3000\"\n";
    let (ok, stderr, _dir) = check_text(yaml);
    assert!(!ok);
    assert!(stderr.contains("routes[0].secrets[0]"), "{stderr}");
    assert!(
        stderr.contains("invalid secret entry; write { env: NAME } or { file: PATH }"),
        "{stderr}"
    );
}

#[test]
fn secret_written_inline_is_not_printed() {
    let yaml = "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: a\n    path: /a\n    provider: github\n    secrets: [ \"TOPSECRET-value-123\" ]\n    upstream: \"http://127.0.0.1:3000\"\n";
    let (ok, stderr, _dir) = check_text(yaml);
    assert!(!ok);
    assert!(stderr.contains("routes[0].secrets[0]"), "{stderr}");
    assert!(
        !stderr.contains("TOPSECRET"),
        "the secret was printed: {stderr}"
    );
}

#[test]
fn rejects_credentials_in_upstream_url() {
    let yaml = "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: a\n    path: /a\n    provider: github\n    secrets: [ { env: PATH } ]\n    upstream: \"http://admin:TOPSECRET@127.0.0.1:3000\"\n";
    let (ok, stderr, _dir) = check_text(yaml);
    assert!(!ok);
    assert!(
        stderr.contains("credentials in the upstream URL are not supported"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("TOPSECRET"),
        "the password was printed: {stderr}"
    );
}

#[test]
fn missing_or_misplaced_keys_name_the_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let whpk = "whpk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    std::fs::write(dir.path().join("whpk"), whpk).expect("write key");
    std::fs::write(
        dir.path().join("whsec"),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    .expect("write key");
    let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    std::fs::write(dir.path().join("pem"), pem).expect("write key");
    let yaml = "\
listeners:
  - address: \"127.0.0.1:8080\"
routes:
  - name: events
    path: /hooks/events
    provider: standard-webhooks
    upstream: \"http://127.0.0.1:3000\"
  - name: signed
    path: /hooks/signed
    signature: { algorithm: ed25519, header: X-Signature, encoding: hex }
    upstream: \"http://127.0.0.1:3000\"
  - name: svix
    path: /hooks/svix
    provider: svix
    secrets: [ { file: whpk } ]
    public_keys: [ { file: whsec } ]
    upstream: \"http://127.0.0.1:3000\"
  - name: github
    path: /hooks/github
    provider: github
    secrets: [ { file: pem } ]
    upstream: \"http://127.0.0.1:3000\"
";
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write config");

    let output = check(&path);

    let stderr =
        String::from_utf8_lossy(&output.stderr).replace(&path.display().to_string(), "FILE");
    assert!(!output.status.success());
    let expected = [
        "FILE:4:5: routes[0].secrets: no keys; add the whsec_ secret as `secrets: [{ env: VARIABLE }]`, or a whpk_ public key for v1a signatures as `public_keys: [{ env: VARIABLE }]`",
        "FILE:8:5: routes[1].public_keys: no public keys; add `public_keys: [{ env: VARIABLE }]`",
        "FILE:15:16: routes[2].secrets[0]: file whpk: this is a whpk_ public key; move the entry from `secrets:` to `public_keys:`",
        "FILE:16:20: routes[2].public_keys[0]: file whsec: this is a whsec_ secret; move the entry from `public_keys:` to `secrets:`",
        "FILE:21:16: routes[3].secrets[0]: file pem: this is a PEM key, not a shared secret",
    ];
    for line in expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("MfKQ9r8"), "a key was echoed: {stderr}");
    assert!(!stderr.contains("AQIDBAUG"), "a key was echoed: {stderr}");
    assert!(!stderr.contains("MCowBQYD"), "a key was echoed: {stderr}");
}

#[test]
fn missing_rule_key_says_what_to_add() {
    let yaml = "\
listeners:
  - address: \"127.0.0.1:8080\"
routes:
  - name: signed
    path: /hooks/signed
    signature:
      algorithm: ed25519
      encoding: hex
    public_keys: [ { env: PATH } ]
    upstream: \"http://127.0.0.1:3000\"
";
    let (ok, stderr, _dir) = check_text(yaml);

    assert!(!ok, "check must fail");
    let expected =
        "FILE:6:5: routes[0].signature: missing key `header`; add `header:` to this block";
    assert!(
        stderr.contains(expected),
        "missing {expected:?} in:\n{stderr}"
    );
}

#[test]
fn rejects_zero_connection_limits() {
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:8080\"\nserver:\n  header_timeout: 0s\n  max_connections: 0\nroutes:\n{VALID_ROUTE}"
    );
    let (ok, stderr, _dir) = check_text(&yaml);
    assert!(!ok);
    let expected = [
        "FILE:4:3: server.header_timeout: header_timeout must be longer than 0s; the default is 10s",
        "FILE:5:3: server.max_connections: max_connections must be at least 1; the default is 10000",
    ];
    for line in expected {
        assert!(stderr.contains(line), "missing {line:?} in:\n{stderr}");
    }
}

#[test]
fn control_characters_in_keys_escaped() {
    let yaml = format!(
        "listeners:\n  - address: \"127.0.0.1:8080\"\n\"a\\nFILE:1:1: forged\\r\\u001b[2J\": 1\nroutes:\n{VALID_ROUTE}"
    );
    let (ok, stderr, _dir) = check_text(&yaml);
    assert!(!ok);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "one error and the summary:\n{stderr}");
    assert!(
        lines[0].starts_with("FILE:3:1: a\\nFILE:1:1: forged\\r\\u{1b}[2J: unknown key"),
        "{stderr}"
    );
}

#[test]
fn rejects_hmac_prefix_no_header_starts_with() {
    for prefix in ["\"é=\"", "\" sha256=\""] {
        let yaml = format!(
            "listeners:\n  - address: \"127.0.0.1:8080\"\nroutes:\n  - name: crm
    path: /hooks/crm
    hmac:
      algorithm: sha256
      header: X-Sig
      prefix: {prefix}
      encoding: hex
    secrets: [ {{ env: PATH }} ]
    upstream: \"http://127.0.0.1:3000\"
"
        );
        let (ok, stderr, _dir) = check_text(&yaml);
        assert!(!ok, "prefix {prefix} was accepted");
        let expected = format!(
            "FILE:6:5: routes[0].hmac: invalid prefix {prefix}: a signature header cannot start with it"
        );
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
