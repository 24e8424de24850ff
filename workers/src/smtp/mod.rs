//! Sending over SMTP in two steps, so a caller can record the point of no return in between:
//! [`SmtpPool::open_data`] goes through MAIL FROM, RCPT TO and DATA until the server answers
//! 354 and waits for the message; [`AwaitingBody::send`] then sends the message and its
//! terminating `.` and reads the server's verdict. A failure before the body leaves the server
//! with no message, so trying again can never send twice.

mod endpoint;
mod pool;

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};

pub use endpoint::{BadUrl, Endpoint};
pub use pool::SmtpPool;

/// The most the exchange may take from taking a connection (or opening one: TCP, TLS, EHLO,
/// AUTH) to the server's 354; past it the attempt is a transient failure. The sweep's lease
/// on a claim (`HERALD_EMAIL_LEASE_SECS`) is longer than this.
pub const BEFORE_BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// The most sending the body and waiting for the server's verdict may take. RFC 5321 asks
/// clients to wait up to 10 minutes for the reply to the final `.` (servers scan content
/// before answering); two minutes keeps a hung server from holding a job far longer, and stays
/// well inside the sweep's 10 minutes before it gives up on a send that reached `DATA`.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an email was not sent, and whether trying again could help.
#[derive(Debug)]
pub struct SendFailure {
    pub permanent: bool,
    /// The server refused the recipient for good (5xx to RCPT TO): no other relay will do
    /// better, so there is no failover.
    pub recipient_refused: bool,
    pub message: String,
}

impl SendFailure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            permanent: false,
            recipient_refused: false,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::transient(message)
        }
    }
}

impl From<lettre::transport::smtp::Error> for SendFailure {
    fn from(error: lettre::transport::smtp::Error) -> Self {
        // 5xx is final; 4xx, refused connections and broken ones may pass later.
        Self {
            permanent: error.is_permanent(),
            recipient_refused: false,
            message: error.to_string(),
        }
    }
}

/// An exchange the server has answered `DATA` for: it waits for the message. Dropping it
/// closes the connection without the terminating `.`, so the server discards what it has.
pub struct AwaitingBody<'a> {
    pool: &'a SmtpPool,
    conn: AsyncSmtpConnection,
}

impl SmtpPool {
    /// MAIL FROM, RCPT TO and DATA for `envelope` on a pooled connection, until the 354.
    pub async fn open_data(
        &self,
        envelope: &Envelope,
        body_is_ascii: bool,
    ) -> Result<AwaitingBody<'_>, SendFailure> {
        let opened = tokio::time::timeout(BEFORE_BODY_TIMEOUT, async {
            let mut conn = self.checkout().await?;
            match start_transaction(&mut conn, envelope, body_is_ascii).await {
                Ok(()) => Ok(conn),
                Err(failure) => {
                    // Mid-transaction: not worth an RSET to reuse it.
                    pool::close(conn);
                    Err(failure)
                }
            }
        })
        .await;
        match opened {
            Ok(Ok(conn)) => Ok(AwaitingBody { pool: self, conn }),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(SendFailure::transient(format!(
                "the SMTP server did not accept the message within {} s",
                BEFORE_BODY_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl AwaitingBody<'_> {
    /// Sends the message and its terminating `.`, and reads the server's verdict.
    pub async fn send(mut self, message: &[u8]) -> Result<(), SendFailure> {
        match tokio::time::timeout(BODY_TIMEOUT, self.conn.message(message)).await {
            Ok(Ok(_accepted)) => {
                self.pool.checkin(self.conn);
                Ok(())
            }
            Ok(Err(error)) => {
                // A 4xx or 5xx verdict ends the transaction; the connection stays usable.
                if error.is_transient() || error.is_permanent() {
                    self.pool.checkin(self.conn);
                }
                Err(error.into())
            }
            Err(_) => Err(SendFailure::transient(format!(
                "the SMTP server did not answer the end of the message within {} s",
                BODY_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The envelope commands, with the extensions non-ASCII addresses or content need (as lettre's
/// own `send` does: refused when the server lacks them).
async fn start_transaction(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body_is_ascii: bool,
) -> Result<(), SendFailure> {
    let mut parameters = Vec::new();
    let ascii_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|address| AsRef::<str>::as_ref(address).is_ascii());
    if !ascii_addresses {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SendFailure::transient(
                "the address is not ASCII and the SMTP server does not support SMTPUTF8",
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !body_is_ascii {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(SendFailure::transient(
                "the message is not ASCII and the SMTP server does not support 8BITMIME",
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    conn.command(Mail::new(envelope.from().cloned(), parameters))
        .await?;
    for recipient in envelope.to() {
        conn.command(Rcpt::new(recipient.clone(), Vec::new()))
            .await
            .map_err(|error| SendFailure {
                recipient_refused: error.is_permanent(),
                ..SendFailure::from(error)
            })?;
    }
    conn.command(Data).await?;
    Ok(())
}
