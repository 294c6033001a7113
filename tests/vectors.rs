//! Runs the signature vectors in `tests/vectors/` against the provider presets.
//!
//! Each case is a request signed by the provider's official library (or taken from the
//! provider's documentation) with the result a strict gateway must return in `expect`. Every
//! case runs with its own `url` (which Twilio signs) and `now`, and each test reports all
//! mismatching case ids at once. For SendGrid and Discord the case's `secret` is the
//! provider's public key.

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookgate::provider::{Failure, Key, KeyError, Request, Scheme, Verified};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// Vector files with the number of cases each one holds.
const FILES: [(&str, usize); 7] = [
    ("github.json", 45),
    ("stripe.json", 43),
    ("slack.json", 63),
    ("standard-webhooks.json", 57),
    ("twilio.json", 19),
    ("sendgrid.json", 45),
    ("discord.json", 43),
];

const DEFAULT_TOLERANCE_SECONDS: u64 = 300;

/// One vector, decoded into what `Scheme::verify` takes.
struct Case {
    id: String,
    provider: String,
    category: String,
    expect_valid: bool,
    secrets: Vec<String>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timestamp: Option<i64>,
    now: i64,
    tolerance: Duration,
}

/// Result of one case: the verification result, or the error of a secret that cannot become
/// a key.
#[derive(Debug, PartialEq)]
enum Outcome {
    Verified(Verified),
    Rejected(Failure),
    KeyRejected(KeyError),
}

impl Outcome {
    fn is_valid(&self) -> bool {
        matches!(self, Outcome::Verified(_))
    }
}

fn load(file: &str) -> Result<Vec<Case>, String> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", file]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    let cases = json
        .as_array()
        .ok_or_else(|| format!("{file}: top level is not an array"))?;
    cases.iter().map(parse_case).collect()
}

fn text(case: &Value, field: &str) -> Result<String, String> {
    case[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("case {}: field {field} is not a string", case["id"]))
}

fn parse_case(case: &Value) -> Result<Case, String> {
    let id = text(case, "id")?;
    let expect = text(case, "expect")?;
    let expect_valid = match expect.as_str() {
        "valid" => true,
        "invalid" => false,
        other => return Err(format!("case {id}: unknown expect {other:?}")),
    };

    let mut secrets = vec![text(case, "secret")?];
    if let Some(fallbacks) = case["fallback_secrets"].as_array() {
        for fallback in fallbacks {
            let fallback = fallback
                .as_str()
                .ok_or(format!("case {id}: bad fallback"))?;
            secrets.push(fallback.to_owned());
        }
    }

    let headers = case["headers"]
        .as_object()
        .ok_or(format!("case {id}: headers is not an object"))?
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().ok_or(format!("case {id}: header {name}"))?;
            Ok((name.clone(), value.to_owned()))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let body = STANDARD
        .decode(text(case, "body_base64")?)
        .map_err(|e| format!("case {id}: body_base64: {e}"))?;
    let timestamp = case["timestamp"].as_i64();
    // With no clock in the case, any time works: use the signing time, or 0 without one.
    let now = case["now"].as_i64().or(timestamp).unwrap_or(0);
    let tolerance = case["tolerance_seconds"]
        .as_u64()
        .unwrap_or(DEFAULT_TOLERANCE_SECONDS);

    Ok(Case {
        provider: text(case, "provider")?,
        category: text(case, "category")?,
        method: text(case, "method")?,
        url: text(case, "url")?,
        id,
        expect_valid,
        secrets,
        headers,
        body,
        timestamp,
        now,
        tolerance: Duration::from_secs(tolerance),
    })
}

/// Picks the preset for a case. GitHub's `legacy` cases carry only the SHA-1
/// `X-Hub-Signature` header, which a rule must opt into with `github-sha1`.
fn scheme_for(case: &Case) -> Result<Scheme, String> {
    let has_header = |wanted: &str| {
        case.headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(wanted))
    };
    if case.provider == "github"
        && case.category == "legacy"
        && has_header("x-hub-signature")
        && !has_header("x-hub-signature-256")
    {
        return Ok(Scheme::GithubSha1);
    }
    Scheme::preset(&case.provider)
        .ok_or_else(|| format!("case {}: no preset for {}", case.id, case.provider))
}

fn header_map(case: &Case, rename: &dyn Fn(&str) -> String) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (name, value) in &case.headers {
        let name = HeaderName::from_bytes(rename(name).as_bytes())
            .map_err(|e| format!("case {}: header name {name}: {e}", case.id))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| format!("case {}: header value: {e}", case.id))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn run(case: &Case, scheme: &Scheme, headers: &HeaderMap) -> Outcome {
    let keys: Result<Vec<Key>, _> = case
        .secrets
        .iter()
        .map(|secret| scheme.derive_key(secret.as_bytes()))
        .collect();
    let keys = match keys {
        Ok(keys) => keys,
        Err(error) => return Outcome::KeyRejected(error),
    };
    let request = Request {
        method: &case.method,
        url: &case.url,
        headers,
        body: &case.body,
    };
    match scheme.verify(&request, &keys, case.now, case.tolerance) {
        Ok(verified) => Outcome::Verified(verified),
        Err(failure) => Outcome::Rejected(failure),
    }
}

/// Returns a description of how the outcome disagrees with the case, or `None` if it agrees.
fn mismatch(case: &Case, outcome: &Outcome) -> Option<String> {
    if outcome.is_valid() != case.expect_valid {
        let expected = if case.expect_valid {
            "valid"
        } else {
            "invalid"
        };
        return Some(format!("{}: expected {expected}, got {outcome:?}", case.id));
    }
    if let Outcome::Verified(verified) = outcome {
        if verified.timestamp != case.timestamp {
            return Some(format!(
                "{}: timestamp {:?}, case says {:?}",
                case.id, verified.timestamp, case.timestamp
            ));
        }
    }
    None
}

fn check_file(
    label: &str,
    file: &str,
    expected_cases: usize,
    scheme_for: &dyn Fn(&Case) -> Result<Scheme, String>,
    rename: &dyn Fn(&str) -> String,
) -> Result<Vec<String>, String> {
    let cases = load(file)?;
    let mut mismatches = Vec::new();
    let mut ran = 0;
    for case in &cases {
        let scheme = scheme_for(case)?;
        let headers = header_map(case, rename)?;
        let outcome = run(case, &scheme, &headers);
        mismatches.extend(mismatch(case, &outcome));
        ran += 1;
    }

    assert_eq!(ran, cases.len(), "{file}: cases skipped");
    assert_eq!(ran, expected_cases, "{file}: case count changed");
    println!("{label}: {} of {ran} cases agree", ran - mismatches.len());
    Ok(mismatches)
}

#[test]
fn every_vector_agrees_with_expect() -> Result<(), String> {
    let mut mismatches = Vec::new();
    for (file, expected_cases) in FILES {
        let same_name = |name: &str| name.to_owned();
        mismatches.extend(check_file(
            file,
            file,
            expected_cases,
            &scheme_for,
            &same_name,
        )?);
    }

    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Ok(())
}

/// Svix sends the Standard Webhooks scheme under `svix-*` header names.
#[test]
fn standard_webhooks_vectors_as_svix() -> Result<(), String> {
    let rename = |name: &str| match name.to_ascii_lowercase().strip_prefix("webhook-") {
        Some(rest) => format!("svix-{rest}"),
        None => name.to_owned(),
    };
    let svix = |_: &Case| Ok(Scheme::Svix);

    let mismatches = check_file(
        "standard-webhooks.json as svix",
        "standard-webhooks.json",
        57,
        &svix,
        &rename,
    )?;

    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Ok(())
}

/// The failure each kind of negative case must report, keyed by the last segment of its id.
const REASONS: &[(&str, Failure)] = &[
    ("body_byte_flipped", Failure::SignatureInvalid),
    ("sha1_body_byte_flipped", Failure::SignatureInvalid),
    ("wrong_secret", Failure::SignatureInvalid),
    ("json_reserialized", Failure::SignatureInvalid),
    ("form_decoded_then_verified", Failure::SignatureInvalid),
    ("param_order_changed", Failure::SignatureInvalid),
    ("form_reencoded_plus_vs_percent", Failure::SignatureInvalid),
    ("multiple_signatures_none_valid", Failure::SignatureInvalid),
    ("msg_id_changed", Failure::SignatureInvalid),
    ("timestamp_changed", Failure::SignatureInvalid),
    ("timestamp_leading_zero", Failure::SignatureInvalid),
    ("timestamp_milliseconds", Failure::SignatureInvalid),
    ("signature_header_missing", Failure::SignatureMissing),
    ("malformed_header", Failure::SignatureMalformed),
    ("wrong_prefix", Failure::SignatureMalformed),
    ("wrong_scheme_prefix", Failure::SignatureMalformed),
    ("no_prefix", Failure::SignatureMalformed),
    ("uppercase_hex", Failure::SignatureMalformed),
    ("space_after_comma", Failure::SignatureMalformed),
    ("timestamp_too_old", Failure::TimestampExpired),
    ("timestamp_too_new", Failure::TimestampInFuture),
    (
        "future_timestamp_beyond_tolerance",
        Failure::TimestampInFuture,
    ),
    ("timestamp_header_missing", Failure::TimestampMissing),
    ("no_timestamp", Failure::TimestampMissing),
    ("duplicate_t", Failure::TimestampMalformed),
    ("timestamp_non_integer", Failure::TimestampMalformed),
    ("timestamp_trailing_garbage", Failure::TimestampMalformed),
    ("id_header_missing", Failure::SignedHeaderMissing),
    ("param_value_changed", Failure::SignatureInvalid),
    ("param_added", Failure::SignatureInvalid),
    ("url_scheme_http", Failure::SignatureInvalid),
    ("url_query_dropped", Failure::SignatureInvalid),
    ("url_host_changed", Failure::SignatureInvalid),
    ("url_trailing_slash", Failure::SignatureInvalid),
    ("bodysha256_param_removed", Failure::SignatureInvalid),
    ("wrong_key", Failure::SignatureInvalid),
    ("official_bad_signature", Failure::SignatureInvalid),
    ("official_bad_key", Failure::SignatureInvalid),
    ("official_timestamp_changed", Failure::SignatureInvalid),
    ("crlf_stripped", Failure::SignatureInvalid),
    ("stale_timestamp_1h", Failure::TimestampExpired),
];

#[test]
fn rejected_vectors_report_expected_reason() -> Result<(), String> {
    let mut mismatches = Vec::new();
    for (file, _) in FILES {
        for case in load(file)?.iter().filter(|case| !case.expect_valid) {
            let kind = case.id.rsplit('/').next().unwrap_or_default();
            let headers = header_map(case, &|n| n.to_owned())?;
            let outcome = run(case, &scheme_for(case)?, &headers);
            let expected = match REASONS.iter().find(|(name, _)| *name == kind) {
                // Discord expects 401 for every bad signature, so hookgate reports a
                // malformed Discord signature as an invalid one.
                Some((_, Failure::SignatureMalformed)) if case.provider == "discord" => {
                    Outcome::Rejected(Failure::SignatureInvalid)
                }
                Some((_, failure)) => Outcome::Rejected(*failure),
                None if kind == "bare_base64_secret_that_is_not_base64" => {
                    Outcome::KeyRejected(KeyError::InvalidBase64)
                }
                None => {
                    mismatches.push(format!("{}: no expected reason listed", case.id));
                    continue;
                }
            };
            if outcome != expected {
                mismatches.push(format!(
                    "{}: expected {expected:?}, got {outcome:?}",
                    case.id
                ));
            }
        }
    }

    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    Ok(())
}

/// GitHub's SHA-1 header is opt-in: the default preset must not fall back to it.
#[test]
fn github_preset_ignores_legacy_header() -> Result<(), String> {
    let cases = load("github.json")?;
    let legacy: Vec<&Case> = cases.iter().filter(|c| c.category == "legacy").collect();
    let mut mismatches = Vec::new();
    for case in &legacy {
        let headers = header_map(case, &|n| n.to_owned())?;
        let outcome = run(case, &Scheme::Github, &headers);
        if outcome != Outcome::Rejected(Failure::SignatureMissing) {
            mismatches.push(format!("{}: got {outcome:?}", case.id));
        }
    }

    assert_eq!(legacy.len(), 8, "legacy case count changed");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    Ok(())
}
