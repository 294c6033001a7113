//! `hookgate sign` and `hookgate send`: sign a body the way a provider would, so that a route
//! can be tested with no provider account. The key comes from a config route (`--route`) or
//! from `--secret-env`, `--secret-file` or `--private-key-file` (`--provider`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::{SendArgs, SignArgs, SigningArgs};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Listener, PathMatch};
use crate::provider::sign::{self, Message};
use crate::provider::{Key, PrivateKey, PublicUrl, Scheme};

/// Time allowed for `send` to connect, write and read the response.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body `send` reads and prints.
const MAX_RESPONSE_BYTES: u64 = 1 << 20;

/// Header names and values, in the order a sender writes them.
type Headers = Vec<(String, String)>;

/// Signing inputs of a request: the scheme, its key (`None` when a private key signs), and
/// for `--route` the route's public URL, path and gateway URL.
struct Target {
    scheme: Scheme,
    key: Option<Key>,
    public_url: Option<PublicUrl>,
    route_path: Option<String>,
    gateway: Option<String>,
}

/// A body signed for one scheme.
struct Signed {
    headers: Headers,
    body: Vec<u8>,
    /// Path the request goes to on the gateway, for the curl command of `--route`.
    route_path: Option<String>,
    /// Base URL of the config's first listener, for the curl command of `--route`.
    gateway: Option<String>,
    /// Whether signing changed the body, as Mailgun's does.
    body_changed: bool,
}

/// Runs `hookgate sign`: prints the headers (`--provider`) or a curl command (`--route`).
/// Mailgun's signature is a body field, so for it `--provider` prints the signed body.
pub fn sign(args: &SignArgs) -> anyhow::Result<()> {
    let signed = build(&args.signing, None)?;
    match &signed.route_path {
        Some(path) => {
            let Some(gateway) = args.gateway.as_ref().or(signed.gateway.as_ref()) else {
                bail!(
                    "the config's first listener has port 0, so its port is chosen at start-up; \
                     pass --gateway with the address the gateway logged, such as \
                     http://127.0.0.1:8080"
                );
            };
            let content_type = &args.signing.content_type;
            println!("{}", curl_command(gateway, path, content_type, &signed));
        }
        None if signed.body_changed => {
            println!("{}", String::from_utf8_lossy(&signed.body));
        }
        None => {
            for (name, value) in &signed.headers {
                println!("{name}: {value}");
            }
        }
    }
    Ok(())
}

/// Runs `hookgate send`: signs like `sign`, posts to `--to`, prints the response.
pub fn send(args: &SendArgs) -> anyhow::Result<()> {
    let signed = build(&args.signing, Some(&args.to))?;
    let (status, body) = post(&args.to, &args.signing.content_type, &signed)?;
    println!("HTTP {status}");
    println!("{}", String::from_utf8_lossy(&body));
    if !(200..300).contains(&status) {
        bail!("{} responded with status {status}", args.to);
    }
    Ok(())
}

/// Signs the body with the key that `args` names. `to` is the target of `send`. Unless `--url`
/// gives the signed URL, it is `to` for `--provider`, and for `--route` the URL the gateway
/// builds from the route's public URL and the path and query of `to`.
fn build(args: &SigningArgs, to: Option<&str>) -> anyhow::Result<Signed> {
    let body = match &args.body_file {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read body file {}", path.display()))?,
        None => args.data.clone().into_bytes(),
    };
    let private_key = args
        .private_key_file
        .as_deref()
        .map(read_private_key)
        .transpose()?;
    let Target {
        scheme,
        key,
        public_url,
        route_path,
        gateway,
    } = match (&args.route, &args.provider) {
        (Some(route), _) => route_target(args, route, private_key.is_some())?,
        (None, Some(provider)) => provider_target(args, provider, private_key.is_some())?,
        (None, None) => bail!("give --provider NAME or --route NAME"),
    };
    let url = match (&args.url, &route_path) {
        (Some(url), _) => url.clone(),
        // The gateway checks a route's request against the URL it builds itself, from the
        // route's `public_url:` and the path and query the request arrives with.
        (None, Some(route_path)) => {
            let received = to.map_or_else(|| route_path.clone(), path_and_query);
            match &public_url {
                Some(public_url) => public_url.signed_url(&scheme, &received),
                None => received,
            }
        }
        (None, None) => to.unwrap_or_default().to_string(),
    };
    if scheme.signs_url() && url.is_empty() {
        bail!(
            "{} signs the URL the sender calls; pass it with --url",
            scheme.name()
        );
    }

    let delivery_id = new_delivery_id();
    let message = Message {
        method: "POST",
        url: &url,
        body: &body,
        timestamp: SystemClock.now_unix(),
        id: &delivery_id,
    };
    let (mut headers, signed_body) =
        sign_message(&scheme, key.as_ref(), private_key.as_ref(), &message)
            .map_err(anyhow::Error::msg)?;
    // Senders give each delivery its own id; without one, a second run would get the
    // duplicate response instead of reaching the upstream.
    if let Some(name) = scheme.delivery_id_header() {
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_str()))
        {
            headers.push((name.to_string(), delivery_id.clone()));
        }
    }
    Ok(Signed {
        headers,
        body_changed: signed_body.is_some(),
        body: signed_body.unwrap_or(body),
        route_path,
        gateway,
    })
}

/// Returns a delivery id that differs on every run.
fn new_delivery_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("msg_hookgate{nanos}")
}

/// Signs `message` with the private key when there is one, else with `key`. Returns the
/// headers and, for Mailgun, whose signature is a body field, the signed body.
fn sign_message(
    scheme: &Scheme,
    key: Option<&Key>,
    private_key: Option<&PrivateKey>,
    message: &Message<'_>,
) -> Result<(Headers, Option<Vec<u8>>), String> {
    match (private_key, key) {
        (Some(private_key), _) => {
            sign::sign_with_private_key(scheme, private_key, message).map(|h| (h, None))
        }
        (None, Some(key)) if matches!(scheme, Scheme::Mailgun) => {
            sign::sign_mailgun_body(key, message).map(|body| (Vec::new(), Some(body)))
        }
        (None, Some(key)) => sign::sign(scheme, key, message).map(|h| (h, None)),
        (None, None) => Err("no key to sign with".to_string()),
    }
}

/// Returns the preset's scheme and the key from `--secret-env` or `--secret-file`.
fn provider_target(
    args: &SigningArgs,
    provider: &str,
    has_private_key: bool,
) -> anyhow::Result<Target> {
    let scheme = Scheme::preset(provider).with_context(|| {
        format!("unknown provider {provider:?}; run `hookgate providers` for the list")
    })?;
    let key = if has_private_key {
        None
    } else {
        Some(secret_key(args, &scheme)?)
    };
    Ok(Target {
        scheme,
        key,
        public_url: None,
        route_path: None,
        gateway: None,
    })
}

/// Returns the scheme, first key, public URL and path of a config route.
fn route_target(args: &SigningArgs, name: &str, has_private_key: bool) -> anyhow::Result<Target> {
    let config = config::load(&args.config.config)?;
    let gateway = config
        .listeners
        .first()
        .filter(|listener| listener.address.port() != 0)
        .map(listener_url);
    let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    let names = names.join(", ");
    let Some(route) = config.routes.into_iter().find(|r| r.name == name) else {
        bail!(
            "no route named {name:?} in {}; its routes are: {names}",
            args.config.config.display()
        );
    };
    let path = match &route.path {
        PathMatch::Exact(path) => path.clone(),
        PathMatch::Prefix(prefix) => format!("{prefix}demo"),
    };
    let key = route.keys.into_iter().next();
    if key.is_none() && !has_private_key && route.scheme.needs_keys() {
        bail!("route {name:?} has no key to sign with");
    }
    Ok(Target {
        scheme: route.scheme,
        key,
        public_url: route.public_url,
        route_path: Some(path),
        gateway,
    })
}

/// Reads the secret of `--secret-env` or `--secret-file` and derives the scheme's key.
fn secret_key(args: &SigningArgs, scheme: &Scheme) -> anyhow::Result<Key> {
    if scheme.accepts_public_keys() && !is_standard(scheme) {
        bail!(
            "{} signs with a private key, not a shared secret; pass it with --private-key-file",
            scheme.name()
        );
    }
    let secret = match (&args.secret_env, &args.secret_file) {
        (Some(name), _) => std::env::var_os(name)
            .with_context(|| format!("environment variable {name} is not set"))?
            .into_encoded_bytes(),
        (None, Some(path)) => {
            let mut bytes = std::fs::read(path)
                .with_context(|| format!("cannot read secret file {}", path.display()))?;
            config::strip_trailing_newline(&mut bytes);
            bytes
        }
        (None, None) if !scheme.needs_keys() => Vec::new(),
        (None, None) => bail!("give the secret with --secret-env VAR or --secret-file PATH"),
    };
    scheme
        .derive_key(&secret)
        .map_err(|e| anyhow::anyhow!("the secret cannot be used for {}: {e}", scheme.name()))
}

fn is_standard(scheme: &Scheme) -> bool {
    matches!(
        scheme,
        Scheme::StandardWebhooks | Scheme::Svix | Scheme::Clerk | Scheme::Resend
    )
}

fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read private key file {}", path.display()))?;
    PrivateKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Returns the path and query of URL `to`, or `to` unchanged when it does not parse, which
/// `post` then reports.
fn path_and_query(to: &str) -> String {
    match to.parse::<http::Uri>() {
        Ok(uri) => uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        Err(_) => to.to_string(),
    }
}

/// Returns the base URL a client on this host reaches `listener` at. An unspecified address
/// becomes the loopback address of its family.
fn listener_url(listener: &Listener) -> String {
    let mut address = listener.address;
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    let scheme = if listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{address}")
}

fn curl_command(gateway: &str, path: &str, content_type: &str, signed: &Signed) -> String {
    let target = format!("{}{}", gateway.trim_end_matches('/'), path);
    let mut command = format!(
        "curl -sS -X POST {} -H {}",
        shell_quote(&target),
        shell_quote(&format!("Content-Type: {content_type}"))
    );
    for (name, value) in &signed.headers {
        command.push_str(&format!(" -H {}", shell_quote(&format!("{name}: {value}"))));
    }
    let body = String::from_utf8_lossy(&signed.body);
    command.push_str(&format!(" --data-binary {}", shell_quote(&body)));
    command
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Posts the signed request over HTTP/1.1 and returns the status and body.
fn post(to: &str, content_type: &str, signed: &Signed) -> anyhow::Result<(u16, Vec<u8>)> {
    let uri: http::Uri = to
        .parse()
        .with_context(|| format!("invalid --to URL {to:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!(
            "--to must be an http:// URL; for https, sign with `hookgate sign` and send with curl"
        );
    }
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        bail!("--to URL {to:?} has no host");
    };
    let port = uri.port_u16().unwrap_or(80);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());

    let mut stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(SEND_TIMEOUT))?;
    stream.set_write_timeout(Some(SEND_TIMEOUT))?;
    let mut request = format!(
        "POST {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        signed.body.len()
    );
    for (name, value) in &signed.headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(&signed.body)?;
    read_response(stream).with_context(|| format!("invalid response from {authority}"))
}

/// Reads a response whose body is delimited by `Content-Length` or by the end of the
/// connection. A chunked body is returned with its chunk framing.
fn read_response(stream: TcpStream) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .context("no HTTP status line")?;
    let mut content_length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let limit = content_length
        .unwrap_or(MAX_RESPONSE_BYTES)
        .min(MAX_RESPONSE_BYTES);
    let mut body = Vec::new();
    reader.take(limit).read_to_end(&mut body)?;
    Ok((status, body))
}
