//! Where the SMTP server is and how to talk to it, read from `SMTP_URL` with lettre's own
//! rules, and opening one connection to it with `TCP_NODELAY` set.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::SendFailure;

/// How the connection is secured, as `SMTP_URL` says.
enum Security {
    /// `smtp://host`: plain text (port 25 by default).
    Plain,
    /// `smtp://host?tls=opportunistic`: STARTTLS when the server offers it (port 587).
    Opportunistic(TlsParameters),
    /// `smtp://host?tls=required`: STARTTLS or fail (port 587).
    Required(TlsParameters),
    /// `smtps://host`: TLS from the first byte (port 465).
    Implicit {
        connector: TlsConnector,
        name: ServerName<'static>,
    },
}

/// One SMTP server and the way to reach it.
pub struct Endpoint {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Connect only to public addresses (a tenant's relay in production).
    public_only: bool,
}

/// Why `SMTP_URL` cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("SMTP_URL is not a usable SMTP URL: {0}")]
pub struct BadUrl(String);

impl Endpoint {
    /// Reads `smtp://[user:pass@]host[:port][/hello-name][?tls=required|opportunistic]` and
    /// `smtps://…` exactly as lettre's `AsyncSmtpTransport::from_url` does (same default
    /// ports, percent-decoded credentials, the path as the EHLO name), which has no way to
    /// hand its settings to a connection of our own.
    pub fn from_url(url: &str) -> Result<Self, BadUrl> {
        let url = url::Url::parse(url).map_err(|e| BadUrl(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| BadUrl("no host".to_owned()))?
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let tls_parameters = || TlsParameters::new(host.clone()).map_err(|e| BadUrl(e.to_string()));
        let (default_port, security) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (SMTP_PORT, Security::Plain),
            ("smtp", Some("required")) => (SUBMISSION_PORT, Security::Required(tls_parameters()?)),
            ("smtp", Some("opportunistic")) => {
                (SUBMISSION_PORT, Security::Opportunistic(tls_parameters()?))
            }
            ("smtps", _) => (SUBMISSIONS_PORT, implicit_tls(&host)?),
            (scheme, tls) => {
                return Err(BadUrl(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?}"
                )));
            }
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(
                percent_decode(url.username())?,
                percent_decode(password)?,
            )),
            None => None,
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
            public_only: false,
        })
    }

    /// The same endpoint, connecting only to public addresses: the name is resolved here and
    /// every loopback, private or link-local address it gives is skipped.
    pub fn public_only(self) -> Self {
        Self {
            public_only: true,
            ..self
        }
    }

    async fn connect_tcp(&self) -> io::Result<TcpStream> {
        if !self.public_only {
            return TcpStream::connect((self.host.as_str(), self.port)).await;
        }
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let mut last = io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{host} resolves to no public address; Herald does not connect to private networks in production"
            ),
        );
        for address in tokio::net::lookup_host((host, self.port)).await? {
            if !herald_shared::net::is_public(address.ip()) {
                continue;
            }
            match TcpStream::connect(address).await {
                Ok(tcp) => return Ok(tcp),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Opens a connection: TCP (`TCP_NODELAY`), TLS as configured, greeting, EHLO, AUTH.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        let tcp = self.connect_tcp().await.map_err(connection_error)?;
        // Nagle's algorithm would hold the message's terminating `.` (a separate small write)
        // until the server ACKs the body, which it delays ~40 ms: one email per 45 ms.
        tcp.set_nodelay(true).map_err(connection_error)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit { connector, name } => Box::new(ImplicitTls(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(connection_error)?,
            )),
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        match &self.security {
            Security::Required(parameters) => {
                conn.starttls(parameters.clone(), &self.hello).await?;
            }
            Security::Opportunistic(parameters) if conn.can_starttls() => {
                conn.starttls(parameters.clone(), &self.hello).await?;
            }
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }
}

/// `smtps://`: lettre's `TlsParameters` cannot wrap a socket we opened, so the TLS client is
/// built as lettre builds its default one: rustls with the ring provider and the webpki roots.
fn implicit_tls(host: &str) -> Result<Security, BadUrl> {
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| BadUrl(format!("{host:?} is not a valid TLS server name")))?;
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| BadUrl(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Security::Implicit {
        connector: TlsConnector::from(Arc::new(config)),
        name,
    })
}

fn percent_decode(text: &str) -> Result<String, BadUrl> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|e| BadUrl(e.to_string()))
}

/// A refused or failed connection (or TLS handshake) may work later: transient, as in lettre.
fn connection_error(error: io::Error) -> SendFailure {
    SendFailure::transient(format!("cannot connect to the SMTP server: {error}"))
}

/// A TLS stream lettre can speak SMTP over (it asks every stream for its peer's address).
#[derive(Debug)]
struct ImplicitTls(TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_and_kind(url: &str) -> (u16, &'static str, bool) {
        let endpoint = Endpoint::from_url(url).unwrap();
        let kind = match endpoint.security {
            Security::Plain => "plain",
            Security::Opportunistic(_) => "opportunistic",
            Security::Required(_) => "required",
            Security::Implicit { .. } => "implicit",
        };
        (endpoint.port, kind, endpoint.credentials.is_some())
    }

    #[test]
    fn every_smtp_url_form_reads_as_lettre_reads_it() {
        assert_eq!(
            port_and_kind("smtp://127.0.0.1:1025"),
            (1025, "plain", false)
        );
        assert_eq!(
            port_and_kind("smtp://mail.example.com"),
            (25, "plain", false)
        );
        assert_eq!(
            port_and_kind("smtp://user:pass@mail.example.com?tls=required"),
            (587, "required", true)
        );
        assert_eq!(
            port_and_kind("smtp://mail.example.com:2525?tls=opportunistic"),
            (2525, "opportunistic", false)
        );
        assert_eq!(
            port_and_kind("smtps://mailer:p%40ss@smtp.example.com"),
            (465, "implicit", true)
        );
    }

    #[test]
    fn credentials_are_percent_decoded_and_the_path_names_the_client() {
        let endpoint =
            Endpoint::from_url("smtps://mailer%2Bx:p%40ss@smtp.example.com/client.example.org")
                .unwrap();
        assert_eq!(
            endpoint.credentials,
            Some(Credentials::new("mailer+x".to_owned(), "p@ss".to_owned()))
        );
        assert_eq!(
            endpoint.hello,
            ClientId::Domain("client.example.org".to_owned())
        );
    }

    #[test]
    fn unusable_urls_are_refused() {
        for url in [
            "http://mail.example.com",
            "smtp://mail.example.com?tls=sometimes",
            "smtp://",
            "not a url",
        ] {
            assert!(Endpoint::from_url(url).is_err(), "{url}");
        }
    }
}
