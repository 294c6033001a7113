//! TLS termination: certificates for the listeners, chosen by SNI, reloaded when their files
//! change or on SIGHUP. A certificate that fails to load on reload leaves the previous one
//! serving.

mod certs;
mod reload;

pub use certs::{load_pair, CertStore, Loaded};
pub use reload::{expiry_warnings, report_loaded, CertWatch, Expiry};
