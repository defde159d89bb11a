//! How this engine reaches PostgreSQL: the URL's `sslmode` and `sslrootcert` (or
//! `--store-ca`), TLS through rustls with the ring provider the rest of the host uses, and the
//! pool's size and connect timeout.
//!
//! The modes are libpq's, so a URL a managed PostgreSQL service hands out works as it is:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (no `sslmode`, no CA) | when the server offers it | no |
//! | `require` | always | no; with a CA given, as `verify-ca` (as libpq does) |
//! | `verify-ca` | always | signed by the CA |
//! | `verify-full` (no `sslmode`, a CA given) | always | signed by the CA and naming the URL's host |
//!
//! The CA is a PEM file (`sslrootcert=/path` in the URL, or `--store-ca`), or
//! `sslrootcert=system` for the public web PKI roots (also what `verify-ca`/`verify-full`
//! use when no CA is given).

use crate::store::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Pool connections per host unless `--store-pool` says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The most connections `--store-pool` may ask for (PostgreSQL's default `max_connections`
/// is 100 for every host together).
pub const MAX_POOL_SIZE: usize = 1024;
/// How long opening one connection (TCP, TLS, authentication) may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to connect to the store, besides its URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A PEM bundle of CA certificates for the server's certificate (`--store-ca`).
    pub ca: Option<PathBuf>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            ca: None,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// libpq's `sslmode`, as far as this engine supports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, its certificate unchecked.
    Prefer,
    /// TLS always, its certificate unchecked.
    Require,
    /// TLS always, the certificate signed by the CA.
    VerifyCa,
    /// TLS always, the certificate signed by the CA and naming the host.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?} is not supported: use disable, prefer, require, verify-ca \
                     or verify-full"
                ));
            }
        })
    }

    /// Its spelling in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the CA comes from.
enum Roots {
    /// None given: no check (`prefer`, `require`) or the web PKI roots (`verify-*`).
    Unset,
    /// `sslrootcert=system`: the public web PKI roots.
    System,
    /// A PEM file.
    File(PathBuf),
}

/// A parsed store URL: the driver's configuration, its TLS connector and the mode.
pub(super) struct Target {
    pub config: tokio_postgres::Config,
    pub tls: tokio_postgres_rustls::MakeRustlsConnect,
    pub mode: SslMode,
}

/// Parses `url` with `options`: the `sslmode` and `sslrootcert` parameters are this module's
/// (the driver knows neither `verify-*` nor `sslrootcert`), every other one the driver's.
/// Errors name what is wrong, never the URL (it may hold a password).
pub(super) fn target(url: &str, options: &PgOptions) -> Result<Target, String> {
    if !(1..=MAX_POOL_SIZE).contains(&options.pool_size) {
        return Err(format!(
            "--store-pool must be between 1 and {MAX_POOL_SIZE}, not {}",
            options.pool_size
        ));
    }
    if options.connect_timeout.is_zero() || options.connect_timeout > Duration::from_secs(600) {
        return Err("--store-connect-timeout must be more than 0 and at most 10 minutes".into());
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| "a store URL parameter is not UTF-8".to_string())?;
        match key {
            "sslmode" => mode = Some(SslMode::parse(&decoded)?),
            "sslrootcert" => root = Some(decoded.into_owned()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "{key}: client certificates are not supported; authenticate with a password"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let roots = match (root, &options.ca) {
        (Some(_), Some(_)) => {
            return Err(
                "the CA is given twice (sslrootcert in the URL and --store-ca): give one".into(),
            );
        }
        (Some(r), None) if r == "system" => Roots::System,
        (Some(r), None) => Roots::File(PathBuf::from(r)),
        (None, Some(path)) => Roots::File(path.clone()),
        (None, None) => Roots::Unset,
    };
    let mode = mode.unwrap_or(match roots {
        Roots::Unset => SslMode::Prefer,
        Roots::System | Roots::File(_) => SslMode::VerifyFull,
    });
    if mode == SslMode::Disable && !matches!(roots, Roots::Unset) {
        return Err("sslmode=disable with a CA (sslrootcert or --store-ca): choose one".into());
    }
    let stripped = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = stripped.parse().map_err(|e| {
        // The causes that name an option, never those that may quote the URL's text.
        let cause = std::error::Error::source(&e)
            .map(ToString::to_string)
            .filter(|c| c.starts_with("unknown option") || c.starts_with("invalid value"))
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        format!(
            "the store URL is not a PostgreSQL connection string \
             (postgres://user:password@host:port/database?sslmode=verify-full){cause}"
        )
    })?;
    config
        .ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        })
        .application_name("edgeward")
        .connect_timeout(options.connect_timeout)
        .keepalives_idle(Duration::from_secs(30));
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(mode, &roots)?);
    Ok(Target { config, tls, mode })
}

/// The rustls client configuration of `mode` with `roots`.
fn client_config(mode: SslMode, roots: &Roots) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trusted = match roots {
        Roots::File(path) => Some(read_ca(path)?),
        Roots::System => Some(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        }),
        Roots::Unset => None,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, trusted) {
        (SslMode::Disable | SslMode::Prefer | SslMode::Require, None) | (SslMode::Prefer, _) => {
            Arc::new(Unchecked(provider.clone()))
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            webpki(mode, webpki_roots_store(), &provider)?
        }
        (_, Some(roots)) => webpki(mode, roots, &provider)?,
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS client configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn webpki_roots_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

/// The web PKI verifier over `roots`; for `verify-ca` and `require` (given a CA), without the
/// host name check.
fn webpki(
    mode: SslMode,
    roots: rustls::RootCertStore,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("the store's CA: {e}"))?;
    Ok(match mode {
        SslMode::VerifyFull => inner,
        _ => Arc::new(AnyName(inner)),
    })
}

/// Reads a PEM bundle of CA certificates.
fn read_ca(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let what = || format!("the store's CA {}", path.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", what()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", what()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            what()
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("{}: a certificate is not usable: {e}", what()))?;
    }
    Ok(roots)
}

/// Adds to a connection error what the mode implies, so the operator reads the fix beside
/// the cause.
pub(super) fn explain(mode: SslMode, e: StoreError) -> StoreError {
    let (StoreError::Unavailable(message) | StoreError::Backend(message)) = &e else {
        return e;
    };
    let hint = if message.contains("UnknownIssuer") || message.contains("unknown issuer") {
        format!(
            "sslmode={}: the server's certificate is not signed by the store's CA \
             (sslrootcert or --store-ca)",
            mode.as_str()
        )
    } else if message.contains("not valid for name") || message.contains("NotValidForName") {
        "sslmode=verify-full: the server's certificate does not name the URL's host \
         (connect by the name in the certificate, or use verify-ca to check the CA only)"
            .to_string()
    } else if message.contains("no encryption") {
        format!(
            "sslmode={}: the server accepts only TLS connections (use sslmode=verify-full, \
             verify-ca or require)",
            mode.as_str()
        )
    } else if message.contains("does not support TLS") {
        format!(
            "sslmode={}: the server does not offer TLS (ssl=on in postgresql.conf)",
            mode.as_str()
        )
    } else {
        return e;
    };
    match e {
        StoreError::Backend(m) => StoreError::Backend(format!("{m} ({hint})")),
        _ => StoreError::Unavailable(format!("{message} ({hint})")),
    }
}

/// Accepts any certificate, still checking the handshake's signatures: libpq's `prefer` and
/// `require` without a CA (encryption against a passive observer only).
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The web PKI check without its host name part: `verify-ca`.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The chain, validity and usage were checked before the name (webpki's order).
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(SslMode, tokio_postgres::Config), String> {
        target(url, &PgOptions::default()).map(|t| (t.mode, t.config))
    }

    #[test]
    fn modes_and_their_defaults() {
        let base = "postgres://u:p@db.example:5432/edgeward";
        for (query, mode) in [
            ("", SslMode::Prefer),
            ("?sslmode=disable", SslMode::Disable),
            ("?sslmode=require", SslMode::Require),
            ("?sslmode=verify-ca", SslMode::VerifyCa),
            ("?sslmode=verify-full", SslMode::VerifyFull),
            ("?sslrootcert=system", SslMode::VerifyFull),
            ("?sslmode=require&sslrootcert=system", SslMode::Require),
        ] {
            let (got, config) = parse(&format!("{base}{query}")).unwrap();
            assert_eq!(got, mode, "{query}");
            assert_eq!(config.get_dbname(), Some("edgeward"), "{query}");
        }
        // The driver still reads the parameters that are its own.
        let (_, config) = parse(&format!(
            "{base}?sslmode=verify-full&connect_timeout=3&hostaddr=127.0.0.1"
        ))
        .unwrap();
        assert_eq!(config.get_hostaddrs().len(), 1);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn bad_settings_are_refused_with_the_rule_and_without_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let base = "postgres://u:hunter2-marker@db.example/edgeward";
        for (query, options, reason) in [
            ("?sslmode=allow", PgOptions::default(), "verify-full"),
            (
                "?sslmode=VERIFY-FULL",
                PgOptions::default(),
                "not supported",
            ),
            (
                "?sslcert=/c.pem",
                PgOptions::default(),
                "client certificates",
            ),
            (
                "?sslrootcert=/nowhere/ca.pem",
                PgOptions::default(),
                "/nowhere/ca.pem",
            ),
            (
                &format!("?sslrootcert={}", not_pem.display()),
                PgOptions::default(),
                "no PEM certificate",
            ),
            (
                "?sslrootcert=system",
                PgOptions {
                    ca: Some(not_pem.clone()),
                    ..PgOptions::default()
                },
                "given twice",
            ),
            (
                "?sslmode=disable",
                PgOptions {
                    ca: Some(not_pem.clone()),
                    ..PgOptions::default()
                },
                "choose one",
            ),
            (
                "",
                PgOptions {
                    pool_size: 0,
                    ..PgOptions::default()
                },
                "--store-pool",
            ),
            (
                "",
                PgOptions {
                    connect_timeout: Duration::ZERO,
                    ..PgOptions::default()
                },
                "--store-connect-timeout",
            ),
            ("?no_such_option=1", PgOptions::default(), "no_such_option"),
        ] {
            let err = match target(&format!("{base}{query}"), &options) {
                Ok(_) => panic!("{query} was accepted"),
                Err(e) => e,
            };
            assert!(err.contains(reason), "{query}: {err}");
            assert!(!err.contains("hunter2"), "{query}: {err}");
        }
    }
}
