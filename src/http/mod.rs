//! Everything that speaks HTTP, below the executor and above only [`crate::outcome`]:
//!
//! - [`client`]: the per-VU client (one keep-alive connection per server, HTTP/1.1 through
//!   [`h1`], HTTP/2 through hyper) and its option types ([`client::ClientOptions`],
//!   [`client::Target`]), which the plan fills in.
//! - [`h1`]: the small HTTP/1.1 connection of the hot path.
//! - [`tls`]: the rustls client configuration shared with the remote-write exporter, and the
//!   credential encodings.
//!
//! Failures become an [`ErrorKind`] here ([`io_error_kind`], [`hyper_error_kind`]).

pub mod client;
pub(crate) mod h1;
pub(crate) mod tls;

use std::io;

use crate::outcome::ErrorKind;

/// Classifies an I/O error.
pub(crate) fn io_error_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            ErrorKind::ConnectionReset
        }
        io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => ErrorKind::ConnectionClosed,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => {
            if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                ErrorKind::Tls
            } else {
                ErrorKind::Io
            }
        }
    }
}

/// Classifies a hyper error by walking its causes.
pub(crate) fn hyper_error_kind(e: &hyper::Error) -> ErrorKind {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io_error_kind(io);
        }
        if s.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        src = s.source();
    }
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
        ErrorKind::ConnectionClosed
    } else if e.is_parse() || e.is_parse_status() || e.is_user() {
        ErrorKind::Protocol
    } else {
        ErrorKind::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        let k = |kind| io_error_kind(&io::Error::from(kind));
        assert_eq!(
            k(io::ErrorKind::ConnectionRefused),
            ErrorKind::ConnectionRefused
        );
        assert_eq!(
            k(io::ErrorKind::ConnectionReset),
            ErrorKind::ConnectionReset
        );
        assert_eq!(k(io::ErrorKind::TimedOut), ErrorKind::Timeout);
        assert_eq!(k(io::ErrorKind::UnexpectedEof), ErrorKind::ConnectionClosed);
        assert_eq!(k(io::ErrorKind::Other), ErrorKind::Io);
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        );
        assert_eq!(io_error_kind(&tls), ErrorKind::Tls);
    }
}
