//! Turns the raw YAML into the validated model, collecting every problem on the way.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::delivery::{self, RawQueue};
use super::error::{ConfigErrors, Problems};
use super::guards;
use super::locate::{Location, Locator};
use super::raw::{RawAdmin, RawGuards, RawHmac, RawListener, RawRoute, RawServer, RawStore};
use super::tls;
use super::{
    keys, signature, units, Config, KeyLoading, Listener, PathMatch, Route, Server, Upstream,
};
use crate::provider::{Algorithm, Encoding, HmacRule, PublicUrl, Scheme};

const TOP_LEVEL_KEYS: &[&str] = &[
    "listeners",
    "admin",
    "server",
    "store",
    "defaults",
    "routes",
    "queue",
];
const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
const DEFAULT_MAX_BODY: usize = 1 << 20;
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
const DEFAULT_THREADS: usize = 2;
const DEFAULT_MAX_BUFFERED_BYTES: usize = 256 << 20;
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Leaves room for upstream and store connections within the systemd unit's
/// `LimitNOFILE=65536`.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

pub fn resolve(file: &Path, text: &str, key_loading: KeyLoading) -> Result<Config, ConfigErrors> {
    let locator = Locator::new(text);
    let mut problems = Problems::new(file, &locator);

    let document: Value = match serde_yaml::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            let location = e
                .location()
                .map_or(Location { line: 1, column: 1 }, |l| Location {
                    line: l.line(),
                    column: l.column(),
                });
            problems.add_at(String::new(), location, format!("invalid YAML: {e}"));
            return Err(problems.finish());
        }
    };
    let empty = Mapping::new();
    let top = match &document {
        Value::Mapping(map) => map,
        Value::Null => &empty,
        _ => {
            problems.add(
                "",
                "the config must be a mapping with `listeners:` and `routes:`",
            );
            return Err(problems.finish());
        }
    };
    for key in top.keys() {
        let name = key.as_str().unwrap_or_default();
        if !TOP_LEVEL_KEYS.contains(&name) {
            problems.add(name, unknown_key(name, TOP_LEVEL_KEYS));
        }
    }

    let base = file.parent().unwrap_or(Path::new("."));
    let listeners = resolve_listeners(top.get("listeners"), base, &mut problems);
    let admin = top
        .get("admin")
        .and_then(|v| deserialize::<RawAdmin>(v, "admin", &mut problems))
        .and_then(|raw| socket_address(&raw.address, "admin.address", &mut problems));
    if let Some(admin) = admin {
        // Port 0 requests a free port from the system, so two such addresses never collide.
        if admin.port() != 0 && listeners.iter().any(|l| l.address == admin) {
            problems.add(
                "admin.address",
                format!("{admin} is also a webhook listener; give the admin listener its own port"),
            );
        }
    }
    let server = resolve_server(top.get("server"), &mut problems);
    let store = guards::resolve_store(
        top.get("store")
            .and_then(|v| deserialize::<RawStore>(v, "store", &mut problems)),
        &mut problems,
    );
    let defaults = top
        .get("defaults")
        .and_then(|v| deserialize::<RawGuards>(v, "defaults", &mut problems))
        .unwrap_or_default();
    let queue = delivery::resolve_queue(
        top.get("queue")
            .and_then(|v| deserialize::<RawQueue>(v, "queue", &mut problems)),
        base,
        &mut problems,
    );
    let routes = resolve_routes(
        top.get("routes"),
        base,
        &defaults,
        queue.as_ref(),
        key_loading,
        &mut problems,
    );

    if !problems.is_empty() {
        return Err(problems.finish());
    }
    Ok(Config {
        file: file.to_path_buf(),
        listeners,
        admin,
        server,
        store,
        routes,
        queue,
    })
}

fn resolve_listeners(value: Option<&Value>, base: &Path, problems: &mut Problems) -> Vec<Listener> {
    let no_listeners = "no listeners; add `listeners: [{ address: \"127.0.0.1:8080\" }]`";
    let Some(value) = value else {
        problems.add("listeners", no_listeners);
        return Vec::new();
    };
    let Some(raw) = deserialize::<Vec<RawListener>>(value, "listeners", problems) else {
        return Vec::new();
    };
    if raw.is_empty() {
        problems.add("listeners", no_listeners);
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let path = format!("listeners[{i}].address");
            let tls = l.tls.as_ref().and_then(|tls| {
                tls::listener_tls(tls, base, &format!("listeners[{i}].tls"), problems)
            });
            let address = socket_address(&l.address, &path, problems)?;
            Some(Listener { address, tls })
        })
        .collect()
}

fn resolve_server(value: Option<&Value>, problems: &mut Problems) -> Server {
    let raw: RawServer = value
        .and_then(|v| deserialize(v, "server", problems))
        .unwrap_or_default();
    let threads = raw.threads.unwrap_or(DEFAULT_THREADS);
    if threads == 0 {
        problems.add("server.threads", "threads must be at least 1");
    }
    let grace_period = duration(
        raw.grace_period.as_deref(),
        "server.grace_period",
        DEFAULT_GRACE_PERIOD,
        problems,
    );
    let reject_warning_threshold = raw.reject_warning_threshold.unwrap_or(100);
    if reject_warning_threshold == 0 {
        problems.add(
            "server.reject_warning_threshold",
            "reject_warning_threshold must be at least 1",
        );
    }
    let trusted_proxies = raw
        .trusted_proxies
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            guards::cidr(text, &format!("server.trusted_proxies[{i}]"), problems)
        })
        .collect();
    let max_buffered_bytes = size(
        raw.max_buffered_bytes.as_deref(),
        "server.max_buffered_bytes",
        DEFAULT_MAX_BUFFERED_BYTES,
        problems,
    );
    let header_timeout = duration(
        raw.header_timeout.as_deref(),
        "server.header_timeout",
        DEFAULT_HEADER_TIMEOUT,
        problems,
    );
    if header_timeout.is_zero() {
        problems.add(
            "server.header_timeout",
            "header_timeout must be longer than 0s; the default is 10s",
        );
    }
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        problems.add(
            "server.max_connections",
            "max_connections must be at least 1; the default is 10000",
        );
    }
    let verified_header = raw.verified_header.as_deref().and_then(|name| {
        match http::HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => Some(header),
            Err(_) => {
                problems.add(
                    "server.verified_header",
                    format!("invalid header name {name:?}"),
                );
                None
            }
        }
    });
    Server {
        verified_header,
        max_buffered_bytes,
        header_timeout,
        max_connections,
        trusted_proxies,
        threads,
        grace_period,
        access_log: raw.access_log.unwrap_or(false),
        reject_warning_threshold,
    }
}

fn resolve_routes(
    value: Option<&Value>,
    base: &Path,
    defaults: &RawGuards,
    queue: Option<&delivery::QueueSettings>,
    key_loading: KeyLoading,
    problems: &mut Problems,
) -> Vec<Route> {
    let items = match value {
        Some(Value::Sequence(items)) if !items.is_empty() => items,
        Some(Value::Sequence(_)) | Some(Value::Null) | None => {
            problems.add(
                "routes",
                "no routes; add at least one route under `routes:`",
            );
            return Vec::new();
        }
        Some(_) => {
            problems.add("routes", "`routes` must be a list of routes");
            return Vec::new();
        }
    };

    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    let mut routes = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("routes[{i}]");
        let Some(mut raw) = deserialize::<RawRoute>(item, &at, problems) else {
            continue;
        };
        if let Some(name) = &raw.name {
            if !names.insert(name.clone()) {
                problems.add(
                    format!("{at}.name"),
                    format!("duplicate route name {name:?}; route names must be unique"),
                );
            }
        }
        let (key, path) = match (&raw.path, &raw.path_prefix) {
            (Some(path), None) => ("path", Some(PathMatch::Exact(path.clone()))),
            (None, Some(prefix)) => ("path_prefix", Some(PathMatch::Prefix(prefix.clone()))),
            _ => ("path", None),
        };
        let host = raw.host.as_ref().map(|h| h.to_ascii_lowercase());
        if let Some(path) = path {
            if !paths.insert((host, path)) {
                problems.add(
                    format!("{at}.{key}"),
                    format!(
                        "another route already has this `{key}`; each path may belong to one route"
                    ),
                );
            }
        }
        let guards = raw.take_guards().or(defaults);
        let (mode, settings) = (raw.delivery.take(), raw.async_delivery.take());
        let delivery = delivery::resolve_mode(mode.as_deref(), settings, queue, &at, problems);
        let is_async = matches!(delivery, super::DeliveryMode::Async(_));
        if is_async && raw.mode.as_deref() == Some("report") {
            problems.add(
                format!("{at}.mode"),
                "mode: report forwards requests that fail verification, and `delivery: async` would store and acknowledge them; use `delivery: sync` while the route is in report mode, or `mode: enforce`",
            );
        }
        let Some(mut route) = resolve_route(raw, guards, &at, base, key_loading, problems) else {
            continue;
        };
        route.delivery = delivery;
        routes.push(route);
    }
    routes
}

fn resolve_route(
    raw: RawRoute,
    guards: RawGuards,
    at: &str,
    base: &Path,
    key_loading: KeyLoading,
    problems: &mut Problems,
) -> Option<Route> {
    let before = problems.len();
    let name = route_name(raw.name.as_deref(), at, problems);
    let path = route_path(raw.path, raw.path_prefix, at, problems);
    let methods = route_methods(raw.methods, at, problems);
    let scheme = match raw.signature {
        Some(rule) => {
            let other_scheme = raw.provider.is_some() || raw.hmac.is_some();
            signature::scheme(other_scheme, rule, at, problems)
        }
        None => route_scheme(raw.provider.as_deref(), raw.hmac, at, problems),
    };

    let route_keys = match key_loading {
        KeyLoading::Read => keys::resolve(
            &raw.secrets,
            &raw.public_keys,
            scheme.as_ref(),
            at,
            base,
            problems,
        ),
        KeyLoading::Skip => keys::RouteKeys::default(),
    };

    let tolerance = duration(
        raw.tolerance.as_deref(),
        &format!("{at}.tolerance"),
        DEFAULT_TOLERANCE,
        problems,
    );
    let max_body = size(
        raw.max_body.as_deref(),
        &format!("{at}.max_body"),
        DEFAULT_MAX_BODY,
        problems,
    );
    let body_timeout = duration(
        raw.body_timeout.as_deref(),
        &format!("{at}.body_timeout"),
        DEFAULT_BODY_TIMEOUT,
        problems,
    );
    let connect_timeout = duration(
        raw.connect_timeout.as_deref(),
        &format!("{at}.connect_timeout"),
        DEFAULT_CONNECT_TIMEOUT,
        problems,
    );
    let response_timeout = duration(
        raw.upstream_timeout.as_deref(),
        &format!("{at}.upstream_timeout"),
        DEFAULT_UPSTREAM_TIMEOUT,
        problems,
    );
    let public_url = raw
        .public_url
        .and_then(|url| public_url(&url, &format!("{at}.public_url"), problems));
    if public_url.is_none() && scheme.as_ref().is_some_and(|s| s.signs_url()) {
        problems.add(
            at,
            "this scheme signs the URL the sender called; add `public_url:` with the URL senders call, such as https://hooks.example.com or https://example.com/hooks/twilio",
        );
    }
    let upstream = upstream(raw.upstream.as_deref(), at, problems).map(|(url, address, https, host)| {
        let (ca, verify) =
            tls::upstream_tls(raw.upstream_tls.as_ref(), https, base, at, problems);
        if !verify {
            tracing::warn!(route = %at, upstream = %url, "insecure_skip_verify is set: the upstream's certificate is not checked");
        }
        Upstream {
            url,
            address,
            tls: https,
            host,
            connect_timeout,
            response_timeout,
            ca,
            verify,
        }
    });
    let host = raw
        .host
        .as_deref()
        .and_then(|host| route_host(host, &format!("{at}.host"), problems));
    let report_only = match raw.mode.as_deref() {
        None | Some("enforce") => false,
        Some("report") => true,
        Some(other) => {
            problems.add(
                format!("{at}.mode"),
                format!("unknown mode {other:?}; use enforce or report"),
            );
            false
        }
    };

    let guards = guards::resolve_guards(guards, tolerance, at, problems);

    if problems.len() > before {
        return None;
    }
    Some(Route {
        name: name?,
        path: path?,
        methods,
        scheme: scheme?,
        keys: route_keys.keys,
        key_labels: route_keys.labels,
        tolerance,
        max_body,
        body_timeout,
        public_url,
        upstream: upstream?,
        guards,
        host,
        report_only,
        delivery: super::DeliveryMode::Sync,
    })
}

/// Parses a `public_url:` value, reporting a problem without echoing a URL with user
/// information, which may hold a password.
fn public_url(url: &str, path: &str, problems: &mut Problems) -> Option<PublicUrl> {
    match PublicUrl::parse(url) {
        Ok(parsed) => Some(parsed),
        Err(why) => {
            let shown = if url.contains('@') { "" } else { url };
            problems.add(
                path,
                format!("invalid public_url {shown:?}: {why}; give the URL senders call, such as https://hooks.example.com or https://example.com/hooks/twilio"),
            );
            None
        }
    }
}

/// Normalizes a `host:` value: lower case, without a port.
fn route_host(host: &str, path: &str, problems: &mut Problems) -> Option<String> {
    let authority = host.trim().parse::<http::uri::Authority>();
    match authority {
        Ok(authority) if !authority.as_str().contains('@') => {
            Some(authority.host().to_ascii_lowercase())
        }
        _ => {
            problems.add(
                path,
                format!("invalid host {host:?}; write a host name such as hooks.example.com"),
            );
            None
        }
    }
}

fn route_name(name: Option<&str>, at: &str, problems: &mut Problems) -> Option<String> {
    let Some(name) = name else {
        problems.add(
            at,
            "route has no `name:`; add a unique name such as `github`",
        );
        return None;
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        problems.add(
            format!("{at}.name"),
            format!("invalid route name {name:?}; use only a-z, 0-9, `_` and `-`"),
        );
        return None;
    }
    Some(name.to_string())
}

fn route_path(
    path: Option<String>,
    prefix: Option<String>,
    at: &str,
    problems: &mut Problems,
) -> Option<PathMatch> {
    let (key, matcher) = match (path, prefix) {
        (Some(_), Some(_)) => {
            problems.add(at, "give either `path:` or `path_prefix:`, not both");
            return None;
        }
        (None, None) => {
            problems.add(at, "route has no `path:` (exact) or `path_prefix:`; add one such as `path: /hooks/github`");
            return None;
        }
        (Some(p), None) => ("path", PathMatch::Exact(p)),
        (None, Some(p)) => ("path_prefix", PathMatch::Prefix(p)),
    };
    let (PathMatch::Exact(text) | PathMatch::Prefix(text)) = &matcher;
    if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
        problems.add(
            format!("{at}.{key}"),
            format!("invalid path {text:?}; a path starts with `/` and has no query or spaces"),
        );
        return None;
    }
    Some(matcher)
}

fn route_methods(
    methods: Option<Vec<String>>,
    at: &str,
    problems: &mut Problems,
) -> Vec<http::Method> {
    let Some(methods) = methods else {
        return vec![http::Method::POST];
    };
    if methods.is_empty() {
        problems.add(
            format!("{at}.methods"),
            "methods is empty; list at least one, such as [POST]",
        );
    }
    methods
        .iter()
        .enumerate()
        .filter_map(
            |(i, m)| match http::Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(method) => Some(method),
                Err(_) => {
                    problems.add(
                        format!("{at}.methods[{i}]"),
                        format!("invalid HTTP method {m:?}"),
                    );
                    None
                }
            },
        )
        .collect()
}

fn route_scheme(
    provider: Option<&str>,
    hmac: Option<RawHmac>,
    at: &str,
    problems: &mut Problems,
) -> Option<Scheme> {
    match (provider, hmac) {
        (Some(_), Some(_)) => {
            problems.add(at, "give either `provider:` or `hmac:`, not both");
            None
        }
        (None, None) => {
            problems.add(
                at,
                format!(
                    "route has no signature scheme; add `provider:` (one of {}), an `hmac:` block or a `signature:` block",
                    Scheme::preset_names().join(", ")
                ),
            );
            None
        }
        (Some(name), None) => {
            let scheme = Scheme::preset(name);
            let lower = name.to_ascii_lowercase();
            if scheme.is_none() && Scheme::preset(&lower).is_some() {
                problems.add(
                    format!("{at}.provider"),
                    format!("unknown provider {name:?}; provider names are lower case: {lower}"),
                );
            } else if scheme.is_none() {
                problems.add(
                    format!("{at}.provider"),
                    format!(
                        "unknown provider {name:?}; use one of {} or an `hmac:` block",
                        Scheme::preset_names().join(", ")
                    ),
                );
            }
            scheme
        }
        (None, Some(raw)) => hmac_rule(raw, &format!("{at}.hmac"), problems).map(Scheme::Hmac),
    }
}

fn hmac_rule(raw: RawHmac, at: &str, problems: &mut Problems) -> Option<HmacRule> {
    let algorithm = match raw.algorithm.as_str() {
        "sha1" => Some(Algorithm::Sha1),
        "sha256" => Some(Algorithm::Sha256),
        "sha512" => Some(Algorithm::Sha512),
        other => {
            problems.add(
                format!("{at}.algorithm"),
                format!("unknown algorithm {other:?}; use sha1, sha256 or sha512"),
            );
            None
        }
    };
    let encoding = match raw.encoding.as_str() {
        "hex" => Some(Encoding::Hex),
        "base64" => Some(Encoding::Base64),
        other => {
            problems.add(
                format!("{at}.encoding"),
                format!("unknown encoding {other:?}; use hex or base64"),
            );
            None
        }
    };
    let rule = HmacRule::new(
        algorithm?,
        &raw.header,
        raw.prefix.as_deref(),
        encoding?,
        raw.signed.as_deref().unwrap_or("{body}"),
        raw.timestamp_header.as_deref(),
        raw.id_header.as_deref(),
    );
    match rule {
        Ok(rule) => Some(rule),
        Err(message) => {
            problems.add(at, message);
            None
        }
    }
}

/// Parses an `http://` or `https://` upstream URL into a resolved address.
fn upstream(
    url: Option<&str>,
    at: &str,
    problems: &mut Problems,
) -> Option<(String, SocketAddr, bool, String)> {
    let path = format!("{at}.upstream");
    let Some(url) = url else {
        problems.add(
            at,
            "route has no `upstream:`; add the app's URL such as \"http://127.0.0.1:3000\"",
        );
        return None;
    };
    // A URL with user:password@ is not echoed, so that credentials stay out of the output.
    let shown = if url.contains('@') { "" } else { url };
    let fail = |problems: &mut Problems, why: &str| {
        problems.add(
            path.clone(),
            format!("invalid upstream URL {shown:?}: {why}; write it as http://HOST:PORT or https://HOST:PORT"),
        );
    };
    let Ok(uri) = url.parse::<http::Uri>() else {
        fail(problems, "not a URL");
        return None;
    };
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            fail(problems, "the scheme must be http or https");
            return None;
        }
    };
    let Some(host) = uri.host() else {
        fail(problems, "no host");
        return None;
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        problems.add(
            path.clone(),
            "credentials in the upstream URL are not supported and would be logged; remove the user:password@ part",
        );
        return None;
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        fail(
            problems,
            "a path or query is not supported, because the request path is forwarded unchanged",
        );
        return None;
    }
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let address = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(address)) => address,
        Ok(None) | Err(_) => {
            fail(problems, "the host does not resolve");
            return None;
        }
    };
    Some((url.to_string(), address, tls, host))
}

fn socket_address(text: &str, path: &str, problems: &mut Problems) -> Option<SocketAddr> {
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            problems.add(
                path,
                format!(
                    "invalid address {text:?}; write IP:PORT, such as 127.0.0.1:8080 or [::1]:8080"
                ),
            );
            None
        }
    }
}

/// Parses an optional byte size of at least 1, reporting a problem and returning `default`
/// when it is invalid.
pub(super) fn size(
    text: Option<&str>,
    path: &str,
    default: usize,
    problems: &mut Problems,
) -> usize {
    match text.map(units::parse_bytes) {
        None => default,
        Some(Ok(size)) if size > 0 => size,
        Some(Ok(_)) => {
            let key = path.rsplit('.').next().unwrap_or(path);
            problems.add(path, format!("{key} must be at least 1 byte"));
            default
        }
        Some(Err(message)) => {
            problems.add(path, message);
            default
        }
    }
}

fn duration(
    text: Option<&str>,
    path: &str,
    default: Duration,
    problems: &mut Problems,
) -> Duration {
    match text.map(units::parse_duration) {
        None => default,
        Some(Ok(value)) => value,
        Some(Err(message)) => {
            problems.add(path, message);
            default
        }
    }
}

/// Deserializes one part of the document, reporting a failure at the exact key. Unknown
/// keys are reported and removed one by one, so that the rest of the part is still checked.
fn deserialize<T: DeserializeOwned>(value: &Value, at: &str, problems: &mut Problems) -> Option<T> {
    let mut value = value.clone();
    loop {
        let error = match serde_path_to_error::deserialize(value.clone()) {
            Ok(parsed) => return Some(parsed),
            Err(error) => error,
        };
        let mut parent = at.to_string();
        let mut segments: Vec<&serde_path_to_error::Segment> = error.path().iter().collect();
        let message = error.inner().to_string();
        let unknown = unknown_field_name(&message).map(str::to_string);
        // For an unknown key the path already ends with that key.
        if unknown.is_some() {
            segments.pop();
        }
        for segment in &segments {
            match segment {
                serde_path_to_error::Segment::Seq { index } => {
                    parent.push_str(&format!("[{index}]"))
                }
                serde_path_to_error::Segment::Map { key } => {
                    if !parent.is_empty() {
                        parent.push('.');
                    }
                    parent.push_str(key);
                }
                _ => {}
            }
        }
        // A secret written inline, in place of `{ env: NAME }`, may appear in the error as a
        // value, a number or a key, so the message names the problem without quoting any of them.
        // `public_keys:` entries get the same care, in case a private key was pasted there.
        if parent.contains("secrets") || parent.contains("public_keys") {
            let Some(field) = unknown else {
                let message = "invalid secret entry; write { env: NAME } or { file: PATH }";
                problems.add(parent, message);
                return None;
            };
            let message = "unknown key in a secret entry; an entry takes env, file and name";
            problems.add(parent, message);
            if !remove_key(&mut value, &segments, &field) {
                return None;
            }
            continue;
        }
        let Some(field) = unknown else {
            problems.add(parent, explain_missing_field(&message));
            return None;
        };
        let path = if parent.is_empty() {
            field.clone()
        } else {
            format!("{parent}.{field}")
        };
        problems.add(path, message.replacen("unknown field", "unknown key", 1));
        if !remove_key(&mut value, &segments, &field) {
            return None;
        }
    }
}

/// Removes `key` from the mapping at `segments` inside `value`; false when it is not there.
fn remove_key(value: &mut Value, segments: &[&serde_path_to_error::Segment], key: &str) -> bool {
    let mut node = value;
    for segment in segments {
        let next = match segment {
            serde_path_to_error::Segment::Seq { index } => node.get_mut(*index),
            serde_path_to_error::Segment::Map { key } => node.get_mut(key.as_str()),
            _ => None,
        };
        let Some(next) = next else { return false };
        node = next;
    }
    node.as_mapping_mut()
        .and_then(|map| map.remove(key))
        .is_some()
}

/// Rewrites serde's "missing field `NAME`" as a config error that names the key to add, and
/// returns any other message unchanged.
fn explain_missing_field(message: &str) -> String {
    let name = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match name {
        Some(name) => format!("missing key `{name}`; add `{name}:` to this block"),
        None => message.to_string(),
    }
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn unknown_key(name: &str, allowed: &[&str]) -> String {
    format!(
        "unknown key `{name}`, expected one of {}",
        allowed.join(", ")
    )
}
