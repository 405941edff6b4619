//! URL credentials, in one place for every URL stampede sends to (the load target and the
//! remote-write endpoint): `scheme://user:password@host/…` is split into the URL without them and
//! the decoded credentials, which become an `Authorization: Basic` header. Schemes are matched
//! case-insensitively (`HTTP://` is `http://`), user and password are percent-decoded
//! separately (`p%40ss` is `p@ss`), and the password never appears in the returned URL, in
//! `Debug` output or in any message.

use base64::Engine as _;
use percent_encoding::percent_decode_str;

/// Decoded `user[:password]` from a URL's userinfo.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// The user name, percent-decoded.
    pub(crate) user: String,
    /// The password, percent-decoded (`None` when the userinfo has no `:`).
    pub(crate) password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// The `Authorization` header value: `Basic base64(user:password)`.
    pub(crate) fn basic_auth(&self) -> String {
        basic_auth(&self.user, self.password.as_deref().unwrap_or(""))
    }
}

/// `Basic base64(user:password)` (RFC 7617).
pub(crate) fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648).
pub(crate) fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are, invalid UTF-8 is replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Splits `scheme://user:password@host/…` into the URL without the userinfo and the decoded
/// credentials. A URL without `scheme://` or without userinfo comes back unchanged.
pub(crate) fn split_credentials(url: &str) -> (String, Option<Credentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &rest[..at];
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let creds = Credentials {
        user: percent_decode(user),
        password: password.map(percent_decode),
    };
    (format!("{scheme}://{}", &rest[at + 1..]), Some(creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_decoded_and_schemes_are_case_insensitive() {
        for url in [
            "http://load:s%40cret@127.0.0.1:9/x?y=1",
            "HTTP://load:s%40cret@127.0.0.1:9/x?y=1",
            "HttpS://load:s%40cret@127.0.0.1:9/x?y=1",
        ] {
            let (rest, creds) = split_credentials(url);
            assert!(!rest.contains("cret"), "{rest}");
            assert!(rest.ends_with("://127.0.0.1:9/x?y=1"), "{rest}");
            let c = creds.expect("credentials");
            assert_eq!(
                (c.user.as_str(), c.password.as_deref()),
                ("load", Some("s@cret"))
            );
            assert!(!format!("{c:?}").contains("cret"));
            assert_eq!(c.basic_auth(), format!("Basic {}", base64(b"load:s@cret")));
        }
        // An `@` after the authority is not userinfo; no scheme, no credentials.
        assert_eq!(
            split_credentials("http://h/a@b"),
            ("http://h/a@b".to_string(), None)
        );
        assert_eq!(split_credentials("/x@y").1, None);
        // A user without a password; the last `@` of the authority ends the userinfo.
        let (rest, c) = split_credentials("http://a@b@h/");
        assert_eq!(rest, "http://h/");
        assert_eq!(c.expect("creds").user, "a@b");
    }

    #[test]
    fn base64_and_percent_decoding() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(
            basic_auth("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(percent_decode("s%3Dcret%40x"), "s=cret@x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
