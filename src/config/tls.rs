//! Resolves a listener's `tls:` block and a route's `upstream_tls:` block. Certificates and
//! keys are loaded here already, so that `hookgate check` reports a missing file or a key
//! that does not match its certificate.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::error::Problems;
use super::raw::{RawTls, RawUpstreamTls};
use super::{ListenerTls, TlsCert};

pub fn listener_tls(
    raw: &RawTls,
    base: &Path,
    at: &str,
    problems: &mut Problems,
) -> Option<ListenerTls> {
    let resolve = |path: &str| base.join(path).display().to_string();
    let certs: Vec<TlsCert> = match (&raw.cert, &raw.key, &raw.certs) {
        (Some(cert), Some(key), None) => vec![TlsCert {
            cert: resolve(cert),
            key: resolve(key),
            default: true,
        }],
        (None, None, Some(list)) if !list.is_empty() => list
            .iter()
            .map(|c| TlsCert {
                cert: resolve(&c.cert),
                key: resolve(&c.key),
                default: c.default.unwrap_or(false),
            })
            .collect(),
        (None, None, Some(_)) => {
            problems.add(
                format!("{at}.certs"),
                "certs is empty; list at least one { cert: PATH, key: PATH }",
            );
            return None;
        }
        _ => {
            problems.add(
                at,
                "give `cert:` and `key:`, or a `certs:` list, but not both",
            );
            return None;
        }
    };
    if certs.iter().filter(|c| c.default).count() > 1 {
        problems.add(
            format!("{at}.certs"),
            "more than one certificate has `default: true`; keep one",
        );
    }
    let mut valid = true;
    for (i, cert) in certs.iter().enumerate() {
        let path = if raw.certs.is_some() {
            format!("{at}.certs[{i}]")
        } else {
            format!("{at}.cert")
        };
        if let Err(message) = crate::tls::load_pair(&cert.cert, &cert.key) {
            problems.add(path, message);
            valid = false;
        }
    }
    valid.then_some(ListenerTls {
        certs,
        http2: raw.http2.unwrap_or(true),
    })
}

/// Returns the CA certificates (DER) and whether to verify the upstream's certificate.
pub fn upstream_tls(
    raw: Option<&RawUpstreamTls>,
    https: bool,
    base: &Path,
    at: &str,
    problems: &mut Problems,
) -> (Vec<Vec<u8>>, bool) {
    let Some(raw) = raw else {
        return (Vec::new(), true);
    };
    if !https {
        problems.add(
            format!("{at}.upstream_tls"),
            "upstream_tls only applies to an https:// upstream",
        );
        return (Vec::new(), true);
    }
    let verify = !raw.insecure_skip_verify.unwrap_or(false);
    let Some(file) = &raw.ca_file else {
        return (Vec::new(), verify);
    };
    let path = base.join(file);
    let certs: Result<Vec<CertificateDer<'static>>, _> = match CertificateDer::pem_file_iter(&path)
    {
        Ok(iter) => iter.collect(),
        Err(e) => {
            problems.add(
                format!("{at}.upstream_tls.ca_file"),
                format!("cannot read CA file {}: {e}", path.display()),
            );
            return (Vec::new(), verify);
        }
    };
    let certs: Vec<Vec<u8>> = match certs {
        Ok(certs) => certs.into_iter().map(|c| c.as_ref().to_vec()).collect(),
        Err(e) => {
            problems.add(
                format!("{at}.upstream_tls.ca_file"),
                format!("invalid PEM in CA file {}: {e}", path.display()),
            );
            return (Vec::new(), verify);
        }
    };
    let parses = certs
        .iter()
        .all(|der| x509_parser::parse_x509_certificate(der).is_ok());
    if certs.is_empty() || !parses {
        problems.add(
            format!("{at}.upstream_tls.ca_file"),
            format!("{} holds no valid PEM certificate; give the CA certificate that signed the upstream's", path.display()),
        );
    }
    (certs, verify)
}
