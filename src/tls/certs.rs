//! Certificate and key loading, and the SNI resolver that serves them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsCert;

/// One certificate chain and key, ready to serve.
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// DNS names from the certificate's subject alternative names, lower case.
    pub names: Vec<String>,
    /// Expiry of the leaf certificate, in Unix seconds.
    pub not_after: i64,
}

/// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC), and
/// checks that they belong together. Errors name the file and the fix.
pub fn load_pair(cert_path: &str, key_path: &str) -> Result<Loaded, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| format!("cannot read certificate file {cert_path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid PEM in certificate file {cert_path}: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err(format!(
            "no certificate in {cert_path}; give a PEM file with the certificate first, then its chain"
        ));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("invalid certificate in {cert_path}: {e}"))?;
    let not_after = parsed.validity().not_after.timestamp();
    let names = dns_names(&parsed);

    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("cannot read a private key from {key_path}: {e}; give a PEM file with a PKCS#8, RSA or EC key"))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key in {key_path}: {e}"))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| {
        format!("the private key in {key_path} does not match the certificate in {cert_path}")
    })?;
    Ok(Loaded {
        key: Arc::new(certified),
        names,
        not_after,
    })
}

fn dns_names(certificate: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The certificates of one listener: by SNI name, with a default for unknown or absent SNI.
struct Table {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    wildcards: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

/// The SNI resolver of one TLS listener; its table is replaced on reload.
pub struct CertStore {
    sources: Vec<TlsCert>,
    table: RwLock<Arc<Table>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("sources", &self.sources)
            .finish()
    }
}

impl CertStore {
    /// Loads every certificate of a listener; fails on the first one that does not load.
    pub fn load(sources: Vec<TlsCert>) -> Result<(CertStore, Vec<(TlsCert, Loaded)>), String> {
        let (table, loaded) = build(&sources)?;
        let store = CertStore {
            sources,
            table: RwLock::new(Arc::new(table)),
        };
        Ok((store, loaded))
    }

    /// Loads the files again and swaps them in, or keeps the current table on error.
    pub fn reload(&self) -> Result<Vec<(TlsCert, Loaded)>, String> {
        let (table, loaded) = build(&self.sources)?;
        if let Ok(mut current) = self.table.write() {
            *current = Arc::new(table);
        }
        Ok(loaded)
    }

    pub fn sources(&self) -> &[TlsCert] {
        &self.sources
    }
}

fn build(sources: &[TlsCert]) -> Result<(Table, Vec<(TlsCert, Loaded)>), String> {
    let mut by_name = HashMap::new();
    let mut wildcards = HashMap::new();
    let mut default = None;
    let mut loaded = Vec::new();
    for source in sources {
        let pair = load_pair(&source.cert, &source.key)?;
        for name in &pair.names {
            match name.strip_prefix("*.") {
                Some(parent) => wildcards
                    .entry(parent.to_string())
                    .or_insert_with(|| Arc::clone(&pair.key)),
                None => by_name
                    .entry(name.clone())
                    .or_insert_with(|| Arc::clone(&pair.key)),
            };
        }
        if source.default || default.is_none() {
            default = Some(Arc::clone(&pair.key));
        }
        loaded.push((source.clone(), pair));
    }
    let default = default.ok_or("a TLS listener needs at least one certificate")?;
    Ok((
        Table {
            by_name,
            wildcards,
            default,
        },
        loaded,
    ))
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.read().ok()?.clone();
        let Some(name) = hello.server_name().map(str::to_ascii_lowercase) else {
            return Some(Arc::clone(&table.default));
        };
        if let Some(key) = table.by_name.get(&name) {
            return Some(Arc::clone(key));
        }
        let parent = name.split_once('.').map(|(_, parent)| parent);
        if let Some(key) = parent.and_then(|parent| table.wildcards.get(parent)) {
            return Some(Arc::clone(key));
        }
        Some(Arc::clone(&table.default))
    }
}
