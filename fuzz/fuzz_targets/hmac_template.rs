//! A generic rule's `signed` template is either rejected or means exactly what a separate
//! reading of the template gives: a request whose signature is the HMAC of the bytes that
//! reading builds verifies, and the same request with a changed body does not. A template
//! without `{body}` is always rejected.

#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hookgate::provider::{Algorithm, Encoding, HmacRule, Request, Scheme};
use hookgate_fuzz::header_map;
use http::HeaderName;
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;
const SIGNATURE_HEADER: &str = "x-sig";
const TIMESTAMP_HEADER: &str = "x-ts";
const ID_HEADER: &str = "x-id";
const METHOD: &str = "POST";
const URL: &str = "/hooks/x?a=1";
const ID: &str = "msg_7";

/// One piece of template text. Placeholder pieces make well-formed templates common, and
/// literal text may still hold braces of its own.
#[derive(Arbitrary, Debug)]
enum Piece {
    Text(String),
    Body,
    Timestamp,
    Id,
    Method,
    Url,
    Header(String),
    OpenBrace,
    CloseBrace,
}

impl Piece {
    fn write(&self, template: &mut String) {
        match self {
            Piece::Text(text) => template.push_str(text),
            Piece::Body => template.push_str("{body}"),
            Piece::Timestamp => template.push_str("{timestamp}"),
            Piece::Id => template.push_str("{id}"),
            Piece::Method => template.push_str("{method}"),
            Piece::Url => template.push_str("{url}"),
            Piece::Header(name) => template.push_str(&format!("{{header:{name}}}")),
            Piece::OpenBrace => template.push_str("{{"),
            Piece::CloseBrace => template.push_str("}}"),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    template: Vec<Piece>,
    prefix: Option<String>,
    algorithm: u8,
    base64: bool,
    timestamp_header: bool,
    id_header: bool,
    body: Vec<u8>,
    secret: Vec<u8>,
}

/// Value the request carries in a `{header:NAME}` header.
fn header_value(name: &HeaderName) -> String {
    format!("value-of-{name}")
}

/// Reads `template` independently of hookgate: the signed bytes, and the names of the
/// `{header:NAME}` placeholders, or `None` when the template is not well formed.
fn read_template(template: &str, body: &[u8]) -> Option<(Vec<u8>, Vec<HeaderName>)> {
    let mut bytes = Vec::new();
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("{{") || rest.starts_with("}}") {
            bytes.push(rest.as_bytes()[0]);
            rest = &rest[2..];
        } else if c == '}' {
            return None;
        } else if c == '{' {
            let close = rest.find('}')?;
            let name = &rest[1..close];
            match name {
                "body" => bytes.extend_from_slice(body),
                "timestamp" => bytes.extend_from_slice(NOW.to_string().as_bytes()),
                "id" => bytes.extend_from_slice(ID.as_bytes()),
                "method" => bytes.extend_from_slice(METHOD.as_bytes()),
                "url" => bytes.extend_from_slice(URL.as_bytes()),
                _ => {
                    let header = name.strip_prefix("header:")?;
                    let header = HeaderName::from_bytes(header.as_bytes()).ok()?;
                    bytes.extend_from_slice(header_value(&header).as_bytes());
                    names.push(header);
                }
            }
            rest = &rest[close + 1..];
        } else {
            bytes.extend_from_slice(&rest.as_bytes()[..c.len_utf8()]);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some((bytes, names))
}

fuzz_target!(|input: Input| {
    let mut template = String::new();
    for piece in &input.template {
        piece.write(&mut template);
    }
    let algorithm =
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][usize::from(input.algorithm % 3)];
    let encoding = if input.base64 {
        Encoding::Base64
    } else {
        Encoding::Hex
    };
    let rule = HmacRule::new(
        algorithm,
        SIGNATURE_HEADER,
        input.prefix.as_deref(),
        encoding,
        &template,
        input.timestamp_header.then_some(TIMESTAMP_HEADER),
        input.id_header.then_some(ID_HEADER),
    );
    let Ok(rule) = rule else {
        return;
    };
    assert!(template.contains("{body}"), "accepted without {{body}}");
    let Some((signed, names)) = read_template(&template, &input.body) else {
        panic!("accepted a template that is not well formed: {template:?}");
    };

    let scheme = Scheme::Hmac(rule);
    let Ok(key) = scheme.derive_key(&input.secret) else {
        return;
    };
    let mac = hookgate_fuzz::reference_hmac(algorithm, &input.secret, &[&signed]);
    let encoded = match encoding {
        Encoding::Hex => hex::encode(mac),
        Encoding::Base64 => STANDARD.encode(mac),
    };
    let signature = format!("{}{encoded}", input.prefix.as_deref().unwrap_or_default());
    let mut pairs = vec![
        (SIGNATURE_HEADER.to_string(), signature.into_bytes()),
        (TIMESTAMP_HEADER.to_string(), NOW.to_string().into_bytes()),
        (ID_HEADER.to_string(), ID.as_bytes().to_vec()),
    ];
    let mut names = names;
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    for name in &names {
        // A placeholder naming one of the rule's own headers reads that header's value.
        if [SIGNATURE_HEADER, TIMESTAMP_HEADER, ID_HEADER].contains(&name.as_str()) {
            return;
        }
        pairs.push((name.to_string(), header_value(name).into_bytes()));
    }
    let headers = header_map(&pairs);
    if headers.len() != pairs.len() {
        // The prefix made the signature header invalid, so no request can carry it.
        return;
    }
    let keys = std::slice::from_ref(&key);
    let tolerance = std::time::Duration::from_secs(300);
    let request = |body| Request {
        method: METHOD,
        url: URL,
        headers: &headers,
        body,
    };

    let result = scheme.verify(&request(&input.body), keys, NOW, tolerance);
    assert!(
        result.is_ok(),
        "template {template:?} with prefix {:?}: {result:?}",
        input.prefix
    );

    let mut changed = input.body.clone();
    match changed.first_mut() {
        Some(first) => *first ^= 1,
        None => changed.push(b'x'),
    }
    let result = scheme.verify(&request(&changed), keys, NOW, tolerance);
    assert!(
        result.is_err(),
        "template {template:?}: changed body verified"
    );
});
