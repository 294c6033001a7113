//! Mutation sweep: every valid case in `tests/vectors/` altered one byte or one header at a
//! time and sent through one running gateway per `now` group. Every altered request must get
//! a 4xx and never reach the upstream.
//!
//! Two kinds of variant are the same request to HTTP and must still be forwarded. Header
//! names are case-insensitive (RFC 9110, section 5.1), so a name in another letter case is
//! one. Spaces and tabs around a field value are not part of it (RFC 9110, section 5.5) and
//! the parser drops them, so a value with a space or tab appended is the other. Other
//! whitespace (vertical tab, form feed, no-break space, or a space inside the value) must be
//! rejected.

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use common::client::{request, Connection, Response};
use common::upstream::Upstream;
use common::{hmac_sha256, Gateway};
use hookgate::provider::Failure;

const FILES: &[&str] = &["github", "stripe", "slack", "standard-webhooks"];

/// Body positions altered per case; each gets four alterations, so at most 40 per case.
const BODY_POSITIONS: usize = 10;

/// Characters altered per signed span of a header value.
const SPAN_POSITIONS: usize = 8;

/// Header that carries the mutant's number, so that each request the upstream records can
/// be traced back to the mutant that produced it. The gateway does not sign or read it.
const MARKER: &str = "x-sweep-id";

/// One valid vector case.
struct Case {
    id: String,
    /// Preset the route uses, `github-sha1` for GitHub's legacy SHA-1-only cases.
    preset: String,
    secrets: Vec<String>,
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    tolerance: u64,
}

/// One request derived from a case.
struct Mutant {
    /// Index of the case in its group, which is also its route number.
    case: usize,
    /// What was changed, for failure messages.
    label: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Whether the variant is the same request to HTTP and must be forwarded.
    forward: bool,
}

/// Bytes of one header value that the gateway must authenticate: changing any of them has to
/// make verification fail.
struct Span {
    header: usize,
    range: Range<usize>,
}

#[test]
fn mutated_vectors_never_reach_upstream() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut sent = 0;
    let mut body_mutants = 0;
    let mut forwarded_variants = 0;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut problems = Vec::new();

    for (now, cases) in load_valid_cases() {
        let mutants: Vec<Mutant> = cases
            .iter()
            .enumerate()
            .flat_map(|(index, case)| mutate(index, case))
            .collect();
        let upstream = Upstream::ok();
        let gateway = start_gateway(&dir, now, &cases, &upstream);

        let before = upstream.requests().len();
        let outcome = send_all(&gateway, &cases, &mutants);
        let recorded = upstream.requests();

        sent += mutants.len();
        body_mutants += mutants
            .iter()
            .filter(|m| m.label.starts_with("body:"))
            .count();
        forwarded_variants += outcome.forwarded.len();
        for (status, count) in outcome.statuses {
            *statuses.entry(status).or_default() += count;
        }
        problems.extend(outcome.problems);
        let expected: usize = mutants.iter().filter(|m| m.forward).count();
        if recorded.len() - before != expected {
            problems.push(format!(
                "now {now:?}: upstream recorded {} requests, expected {expected} (the \
                 equivalent variants only)",
                recorded.len() - before
            ));
        }
        for request in &recorded[before..] {
            let marker = request.header(MARKER);
            let number = marker.first().and_then(|n| n.parse::<usize>().ok());
            match number.and_then(|n| mutants.get(n)) {
                Some(mutant) if mutant.forward => {}
                Some(mutant) => problems.push(format!(
                    "{}: altered request reached the upstream: {}",
                    cases[mutant.case].id, mutant.label
                )),
                None => problems.push(format!("upstream recorded an unknown request {marker:?}")),
            }
        }
    }

    println!(
        "mutation sweep: {sent} requests ({body_mutants} with an altered body, \
         {forwarded_variants} equivalent variants forwarded), statuses {statuses:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(sent >= 1500, "only {sent} mutations were generated");
    assert!(
        problems.is_empty(),
        "{} problems among {sent} mutated requests:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn load_valid_cases() -> BTreeMap<Option<i64>, Vec<Case>> {
    let mut groups: BTreeMap<Option<i64>, Vec<Case>> = BTreeMap::new();
    for file in FILES {
        let path = format!("{}/tests/vectors/{file}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("read vector file");
        let cases: Vec<Value> = serde_json::from_str(&text).expect("vector file is a JSON list");
        for case in cases.iter().filter(|c| c["expect"] == "valid") {
            let text = |field: &str| case[field].as_str().unwrap_or_default().to_string();
            let mut secrets = vec![text("secret")];
            if let Some(more) = case["fallback_secrets"].as_array() {
                secrets.extend(more.iter().filter_map(|s| s.as_str().map(str::to_string)));
            }
            let headers: Vec<(String, String)> = case["headers"]
                .as_object()
                .expect("headers object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            let provider = text("provider");
            let sha1_only = provider == "github"
                && header_index(&headers, "x-hub-signature").is_some()
                && header_index(&headers, "x-hub-signature-256").is_none();
            let parsed = Case {
                id: text("id"),
                preset: if sha1_only {
                    "github-sha1".to_string()
                } else {
                    provider
                },
                secrets,
                method: text("method"),
                headers,
                body: STANDARD.decode(text("body_base64")).expect("body base64"),
                tolerance: case["tolerance_seconds"].as_u64().unwrap_or(300),
            };
            groups.entry(case["now"].as_i64()).or_default().push(parsed);
        }
    }
    groups
}

/// Starts a gateway with route `/v/<index>` for each case, its clock fixed at `now`, and
/// the guards that would count repeated or failed requests turned off.
fn start_gateway(
    dir: &tempfile::TempDir,
    now: Option<i64>,
    cases: &[Case],
    upstream: &Upstream,
) -> Gateway {
    let mut routes = String::new();
    for (index, case) in cases.iter().enumerate() {
        routes.push_str(&format!(
            "  - name: case{index}\n    path: /v/{index}\n    provider: {}\n    tolerance: {}s\n    upstream: \"{}\"\n    secrets:\n",
            case.preset,
            case.tolerance,
            upstream.url()
        ));
        for (n, secret) in case.secrets.iter().enumerate() {
            let file = dir.path().join(format!("{}-{index}-{n}", now.unwrap_or(0)));
            std::fs::write(&file, secret).expect("write secret");
            routes.push_str(&format!("      - file: \"{}\"\n", file.display()));
        }
    }
    routes.push_str(
        "defaults:\n  failed_verify_limit: { enabled: false }\n  replay: { enabled: false }\n",
    );
    let clock = now.map(|n| n.to_string());
    let args: Vec<&str> = match &clock {
        Some(n) => vec!["--fixed-clock", n],
        None => Vec::new(),
    };
    Gateway::start_with(&routes, &args)
}

/// What one group's requests produced.
struct Outcome {
    statuses: BTreeMap<u16, usize>,
    forwarded: Vec<usize>,
    problems: Vec<String>,
}

/// Sends every mutant in order, reusing a connection for as long as the gateway keeps it
/// open. Every rejection closes the connection, so most mutants open a new one.
fn send_all(gateway: &Gateway, cases: &[Case], mutants: &[Mutant]) -> Outcome {
    let mut outcome = Outcome {
        statuses: BTreeMap::new(),
        forwarded: Vec::new(),
        problems: Vec::new(),
    };
    let mut open: Option<Connection> = None;
    for (number, mutant) in mutants.iter().enumerate() {
        let case = &cases[mutant.case];
        let marker = number.to_string();
        let mut headers: Vec<(&str, &str)> = mutant
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.push((MARKER, &marker));
        let path = format!("/v/{}", mutant.case);
        let bytes = request(&case.method, &path, &headers, &mutant.body);

        let connection = open.get_or_insert_with(|| Connection::open(gateway.addr));
        // A write cut short is not yet a failure, because the gateway may have responded and
        // closed before reading the whole request. The response is read either way.
        let _ = connection.try_write(&bytes);
        let response = connection.read_response(&case.method);
        let Some(response) = response else {
            open = None;
            outcome
                .problems
                .push(format!("{}: no response to {}", case.id, mutant.label));
            continue;
        };
        *outcome.statuses.entry(response.status).or_default() += 1;
        let keep_alive = response
            .header("connection")
            .is_none_or(|value| !value.eq_ignore_ascii_case("close"));
        if !keep_alive {
            open = None;
        }

        let problem = match (mutant.forward, response.status) {
            (true, 200) => {
                outcome.forwarded.push(number);
                None
            }
            (true, status) => Some(format!(
                "equivalent variant was not forwarded: {status} {}",
                response.body_text()
            )),
            (false, 400..=499) if is_verification_or_parse_error(&response) => None,
            (false, status) => Some(format!(
                "expected a verification failure or the parser's 400, got {status} {}",
                response.body_text()
            )),
        };
        if let Some(problem) = problem {
            outcome
                .problems
                .push(format!("{}: {}: {problem}", case.id, mutant.label));
        }
    }
    outcome
}

/// Returns whether a rejection names a verification failure, or is the HTTP parser's own 400 (no
/// JSON body) for a header value with a control character. Any other reason, such as
/// `no_route`, would mean the mutant never reached verification.
fn is_verification_or_parse_error(response: &Response) -> bool {
    let reason = response.reason();
    let verification = Failure::ALL
        .iter()
        .any(|failure| failure.as_str() == reason);
    verification || (response.status == 400 && reason.is_empty())
}

/// Builds every mutant of one case: body alterations first, then header alterations.
fn mutate(index: usize, case: &Case) -> Vec<Mutant> {
    let mut mutants = body_mutants(index, case);
    mutants.extend(header_mutants(index, case));
    mutants
}

fn body_mutants(index: usize, case: &Case) -> Vec<Mutant> {
    let mutant = |label: String, body: Vec<u8>| Mutant {
        case: index,
        label,
        headers: case.headers.clone(),
        body,
        forward: false,
    };
    let body = &case.body;
    if body.is_empty() {
        return [0x00, b' ', b'\n', b'{']
            .into_iter()
            .map(|byte| {
                mutant(
                    format!("body: insert {byte:#04x} into empty body"),
                    vec![byte],
                )
            })
            .collect();
    }

    let mut mutants = Vec::new();
    for position in sample_positions(body.len(), index as u64) {
        let mut flipped = body.clone();
        flipped[position] ^= 1;
        mutants.push(mutant(format!("body: flip bit 0 at {position}"), flipped));

        if body[position] != 0 {
            let mut zeroed = body.clone();
            zeroed[position] = 0;
            mutants.push(mutant(format!("body: set byte {position} to 0x00"), zeroed));
        }

        let mut shorter = body.clone();
        shorter.remove(position);
        mutants.push(mutant(format!("body: delete byte {position}"), shorter));

        // The last position appends, so that a byte added after the signed body is covered.
        let at = if position == body.len() - 1 {
            body.len()
        } else {
            position
        };
        let byte = body[position].wrapping_add(0x41);
        let mut longer = body.clone();
        longer.insert(at, byte);
        mutants.push(mutant(format!("body: insert {byte:#04x} at {at}"), longer));
    }
    mutants
}

/// Returns up to [`BODY_POSITIONS`] distinct positions below `len`: the first, the middle,
/// the last and the rest drawn with a xorshift generator seeded by `seed`.
fn sample_positions(len: usize, seed: u64) -> Vec<usize> {
    let mut positions = vec![0, len / 2, len - 1];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let wanted = BODY_POSITIONS.min(len);
    let mut tries = 0;
    while positions.len() < wanted && tries < 1000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        positions.push((state % len as u64) as usize);
        positions.sort_unstable();
        positions.dedup();
        tries += 1;
    }
    positions.dedup();
    positions
}

fn header_mutants(index: usize, case: &Case) -> Vec<Mutant> {
    let spans = signed_spans(case);
    let mut mutants = Vec::new();
    let mut add = |label: String, headers: Vec<(String, String)>, forward: bool| {
        mutants.push(Mutant {
            case: index,
            label,
            headers,
            body: case.body.clone(),
            forward,
        });
    };
    let mut signed_headers: Vec<usize> = spans.iter().map(|s| s.header).collect();
    signed_headers.dedup();

    for &header in &signed_headers {
        let (name, value) = &case.headers[header];

        let mut dropped = case.headers.clone();
        dropped.remove(header);
        add(format!("drop {name}"), dropped, false);

        for (new_name, how) in [
            (name.to_ascii_lowercase(), "lower"),
            (name.to_ascii_uppercase(), "upper"),
        ] {
            let mut renamed = case.headers.clone();
            renamed[header].0 = new_name;
            add(format!("{name} name in {how} case"), renamed, true);
        }

        for (suffix, forward) in [
            (" ", true),
            ("\t", true),
            ("  \t ", true),
            ("\u{b}", false),
            ("\u{c}", false),
            ("\u{a0}", false),
        ] {
            let mut padded = case.headers.clone();
            padded[header].1 = format!("{value}{suffix}");
            add(format!("{name} value + {suffix:?}"), padded, forward);
        }
    }

    for span in &spans {
        let (name, value) = &case.headers[span.header];
        for position in spread(span.range.clone(), SPAN_POSITIONS) {
            let mut changed = case.headers.clone();
            changed[span.header].1 = replace_char(value, position);
            add(
                format!("{name}: change character {position} of {value:?}"),
                changed,
                false,
            );
        }
        let middle = span.range.start + span.range.len() / 2;
        let mut spaced = case.headers.clone();
        spaced[span.header].1.insert(middle, ' ');
        add(format!("{name}: space inserted at {middle}"), spaced, false);
    }

    // The first span of a case is always in its signature header.
    if let Some(span) = spans.first() {
        let (name, value) = &case.headers[span.header];
        let forged = replace_char(value, span.range.end - 1);
        for forged_first in [false, true] {
            let mut doubled = case.headers.clone();
            let copy = (name.clone(), forged.clone());
            let at = if forged_first {
                span.header
            } else {
                span.header + 1
            };
            doubled.insert(at, copy);
            let order = if forged_first { "before" } else { "after" };
            add(
                format!("{name} repeated with a forged value {order} the real one"),
                doubled,
                false,
            );
        }
    }
    mutants
}

/// Returns the signed spans of a case, signature header first. A Stripe or Standard
/// Webhooks header can carry signatures that match no configured secret (rotation, `v0`,
/// `v1a`). Only the element that matches is a span, because changing the others leaves a
/// valid request.
fn signed_spans(case: &Case) -> Vec<Span> {
    let whole = |name: &str| {
        let header = header_index(&case.headers, name)
            .unwrap_or_else(|| panic!("{}: no {name} header", case.id));
        Span {
            header,
            range: 0..case.headers[header].1.len(),
        }
    };
    match case.preset.as_str() {
        "github" => vec![whole("x-hub-signature-256")],
        "github-sha1" => vec![whole("x-hub-signature")],
        "slack" => vec![
            whole("x-slack-signature"),
            whole("x-slack-request-timestamp"),
        ],
        "stripe" => stripe_spans(case),
        "standard-webhooks" => standard_spans(case),
        other => panic!("{}: no spans known for preset {other}", case.id),
    }
}

fn stripe_spans(case: &Case) -> Vec<Span> {
    let header = header_index(&case.headers, "stripe-signature").expect("Stripe-Signature");
    let value = &case.headers[header].1;
    let t_start = value.find("t=").expect("t element");
    let t_end = value[t_start..]
        .find(',')
        .map_or(value.len(), |i| t_start + i);
    let t = &value[t_start + 2..t_end];
    let signature = case.secrets.iter().find_map(|secret| {
        let mac = hmac_sha256(secret.as_bytes(), &[t.as_bytes(), b".", &case.body]);
        element_span(value, &format!("v1={}", hex::encode(mac)))
    });
    let signature =
        signature.unwrap_or_else(|| panic!("{}: no v1 element matches a secret", case.id));
    vec![
        Span {
            header,
            range: signature,
        },
        Span {
            header,
            range: t_start..t_end,
        },
    ]
}

fn standard_spans(case: &Case) -> Vec<Span> {
    let signature = header_index(&case.headers, "webhook-signature").expect("signature");
    let id = header_index(&case.headers, "webhook-id").expect("webhook-id");
    let timestamp = header_index(&case.headers, "webhook-timestamp").expect("timestamp");
    let value = &case.headers[signature].1;
    let signed = case.secrets.iter().find_map(|secret| {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD.decode(encoded).expect("secret is base64");
        let mac = hmac_sha256(
            &key,
            &[
                case.headers[id].1.as_bytes(),
                b".",
                case.headers[timestamp].1.as_bytes(),
                b".",
                &case.body,
            ],
        );
        element_span(value, &format!("v1,{}", STANDARD.encode(mac)))
    });
    let signed = signed.unwrap_or_else(|| panic!("{}: no v1 entry matches a secret", case.id));
    let whole = |header: usize| Span {
        header,
        range: 0..case.headers[header].1.len(),
    };
    vec![
        Span {
            header: signature,
            range: signed,
        },
        whole(id),
        whole(timestamp),
    ]
}

/// Finds `element` in `value` exactly once and returns its byte range.
fn element_span(value: &str, element: &str) -> Option<Range<usize>> {
    let start = value.find(element)?;
    let repeated = value[start + 1..].contains(element);
    assert!(!repeated, "{element} occurs twice in {value}");
    Some(start..start + element.len())
}

fn header_index(headers: &[(String, String)], name: &str) -> Option<usize> {
    headers
        .iter()
        .position(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// Returns up to `count` positions of `range`, evenly spread and including both ends.
fn spread(range: Range<usize>, count: usize) -> Vec<usize> {
    let len = range.len();
    if len <= count {
        return range.collect();
    }
    (0..count)
        .map(|i| range.start + i * (len - 1) / (count - 1))
        .collect()
}

/// Replaces the ASCII character at `position` with a neighbour, which for digits, letters
/// and base64 symbols usually stays in the same alphabet, so that the value stays well formed
/// and only the MAC comparison can reject it.
fn replace_char(value: &str, position: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[position] = match bytes[position] {
        b'9' => b'0',
        b'z' => b'a',
        b'Z' => b'A',
        c @ (b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y') => c + 1,
        b'+' => b'/',
        b'/' => b'+',
        b'=' => b'A',
        _ => b'x',
    };
    String::from_utf8(bytes).expect("vector header values are ASCII")
}
