//! Values and crypto, no I/O: key generation and formats, certificate issuance and
//! inspection, PEM, the CA pin, trust bundles, and sealing with a certificate key. The only home of rcgen
//! and x509-parser.

pub mod csr;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod pem;
pub mod pin;
pub mod seal;
pub mod subject;
pub mod trust;
