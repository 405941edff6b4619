//! Export settings: Prometheus remote-write targets (`[metrics.remote_write]` or
//! `[[metrics.remote_write]]`). Plain data plus validation without I/O; the export layer reads
//! the referenced secrets (files, environment variables) and builds the senders.
//!
//! Secrets never reach a log line or an error: [`Secret`] and [`RemoteWriteConfig`] print
//! `<redacted>` in their `Debug` output and URLs go through [`redact_url`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use http::header::{self, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer};

use super::Dur;

/// A secret string (password, token). `Debug` prints `<redacted>`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `remote_write.basic_auth`: username plus exactly one password source.
#[derive(Clone, Default, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// `username`.
    pub username: String,
    /// `password` (inline; prefer `password_file`/`password_env`).
    #[serde(default)]
    pub password: Option<Secret>,
    /// `password_file`: file whose trimmed content is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `password_env`: environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// `remote_write.tls`.
#[derive(Clone, Default, Deserialize, Debug)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `ca_file`: PEM bundle trusted in addition to the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// `insecure_skip_verify`: accept any server certificate (testing only).
    pub insecure_skip_verify: bool,
}

/// One remote-write target.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteWriteConfig {
    /// `url`: receiver endpoint, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// `push_interval`: collection + push interval, default `5s`, minimum `1s`.
    pub push_interval: Dur,
    /// `timeout`: per HTTP attempt (connect + request + response), default `10s`.
    pub timeout: Dur,
    /// `headers`: extra request headers (may not override the protocol headers).
    pub headers: BTreeMap<String, String>,
    /// `basic_auth`.
    pub basic_auth: Option<BasicAuth>,
    /// `bearer_token` (inline).
    pub bearer_token: Option<Secret>,
    /// `bearer_token_file`.
    pub bearer_token_file: Option<PathBuf>,
    /// `bearer_token_env`: name of an environment variable.
    pub bearer_token_env: Option<String>,
    /// `tls`.
    pub tls: TlsConfig,
    /// `queue_capacity`: max queued batches (pushes); default 720 (1 h at 5 s).
    pub queue_capacity: usize,
    /// `max_retries` per batch before it is given up (counted); default 10.
    pub max_retries: u32,
    /// `min_backoff`: cap of the first retry's backoff, default `100ms`.
    pub min_backoff: Dur,
    /// `max_backoff`: backoff cap, default `10s`.
    pub max_backoff: Dur,
    /// `stale_markers_on_end`: at the end, send a StaleNaN for every series seen.
    pub stale_markers_on_end: bool,
    /// `send_metadata`: include `MetricMetadata` in every request (default false, like the
    /// Collector).
    pub send_metadata: bool,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            push_interval: Dur::secs(5),
            timeout: Dur::secs(10),
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token: None,
            bearer_token_file: None,
            bearer_token_env: None,
            tls: TlsConfig::default(),
            queue_capacity: 720,
            max_retries: 10,
            min_backoff: Dur::millis(100),
            max_backoff: Dur::secs(10),
            stale_markers_on_end: false,
            send_metadata: false,
        }
    }
}

impl fmt::Debug for RemoteWriteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("RemoteWriteConfig")
            .field("url", &redact_url(&self.url))
            .field("push_interval", &self.push_interval)
            .field("timeout", &self.timeout)
            .field("headers", &headers)
            .field("basic_auth", &self.basic_auth)
            .field("bearer_token", &self.bearer_token)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("bearer_token_env", &self.bearer_token_env)
            .field("tls", &self.tls)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_retries", &self.max_retries)
            .field("min_backoff", &self.min_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("stale_markers_on_end", &self.stale_markers_on_end)
            .field("send_metadata", &self.send_metadata)
            .finish()
    }
}

/// A remote-write setting that cannot work. The message names the `remote_write.*` key and
/// never contains a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid remote_write.{key}: {reason}")]
pub struct InvalidRemoteWrite {
    /// Config key, e.g. `push_interval`.
    pub key: &'static str,
    /// Why it is invalid.
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> InvalidRemoteWrite {
    InvalidRemoteWrite {
        key,
        reason: reason.into(),
    }
}

/// The parts of a remote-write URL the sender needs.
#[derive(Clone, Debug)]
pub struct RemoteWriteUrl {
    /// The parsed URL (may still hold userinfo: never print it, use [`redact_url`]).
    pub uri: http::Uri,
    /// `https`?
    pub https: bool,
    /// Host without brackets.
    pub host: String,
    /// Port (default 80/443).
    pub port: u16,
}

impl RemoteWriteConfig {
    /// Validates the settings without reading files or the environment.
    pub fn validate(&self) -> Result<(), InvalidRemoteWrite> {
        self.parse_url()?;
        if self.push_interval.get() < std::time::Duration::from_secs(1) {
            return Err(invalid(
                "push_interval",
                format!("must be at least 1s, got {}", self.push_interval),
            ));
        }
        if self.timeout.get().is_zero() {
            return Err(invalid("timeout", "must be greater than 0"));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", "must be at least 1"));
        }
        if self.min_backoff.get().is_zero() {
            return Err(invalid("min_backoff", "must be greater than 0"));
        }
        if self.max_backoff < self.min_backoff {
            return Err(invalid("max_backoff", "must be >= min_backoff"));
        }
        let bearer_sources = usize::from(self.bearer_token.is_some())
            + usize::from(self.bearer_token_file.is_some())
            + usize::from(self.bearer_token_env.is_some());
        if bearer_sources > 1 {
            return Err(invalid(
                "bearer_token",
                "set only one of bearer_token, bearer_token_file, bearer_token_env",
            ));
        }
        if let Some(b) = &self.basic_auth {
            if bearer_sources > 0 {
                return Err(invalid(
                    "basic_auth",
                    "cannot be combined with bearer_token*",
                ));
            }
            if b.username.is_empty() {
                return Err(invalid("basic_auth.username", "must not be empty"));
            }
            let n = usize::from(b.password.is_some())
                + usize::from(b.password_file.is_some())
                + usize::from(b.password_env.is_some());
            if n != 1 {
                return Err(invalid(
                    "basic_auth.password",
                    "set exactly one of password, password_file, password_env",
                ));
            }
        }
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| invalid("headers", format!("invalid header name {k:?}")))?;
            if HeaderValue::from_str(v).is_err() {
                return Err(invalid(
                    "headers",
                    format!("invalid value for header {k:?}"),
                ));
            }
            let reserved = [
                header::CONTENT_ENCODING,
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::HOST,
                HeaderName::from_static("x-prometheus-remote-write-version"),
            ];
            if reserved.contains(&name) {
                return Err(invalid(
                    "headers",
                    format!("header {k:?} cannot be overridden"),
                ));
            }
            if name == header::AUTHORIZATION && (bearer_sources > 0 || self.basic_auth.is_some()) {
                return Err(invalid(
                    "headers",
                    "Authorization header conflicts with basic_auth/bearer_token",
                ));
            }
        }
        if self.tls.ca_file.is_some() && self.tls.insecure_skip_verify {
            return Err(invalid(
                "tls.insecure_skip_verify",
                "cannot be combined with tls.ca_file",
            ));
        }
        Ok(())
    }

    /// Parses `url`: scheme http/https, a host, the port.
    pub fn parse_url(&self) -> Result<RemoteWriteUrl, InvalidRemoteWrite> {
        if self.url.trim().is_empty() {
            return Err(invalid("url", "must be set"));
        }
        let uri: http::Uri = self
            .url
            .trim()
            .parse()
            .map_err(|_| invalid("url", format!("cannot parse {}", redact_url(&self.url))))?;
        // Schemes are case-insensitive (`HTTPS://` is https).
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid("url", "scheme must be http or https")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("url", "missing host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(RemoteWriteUrl {
            uri,
            https,
            host,
            port,
        })
    }
}

/// Accepts `[metrics.remote_write]` (one table) or `[[metrics.remote_write]]` (a list).
pub(super) fn remote_write_list<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RemoteWriteConfig>, D::Error> {
    use serde::de::Error as _;
    // Decide by shape first so that errors inside a table keep their precise message.
    let v = <figment::value::Value as Deserialize>::deserialize(d)?;
    if v.as_array().is_some() {
        v.deserialize::<Vec<RemoteWriteConfig>>()
            .map_err(|e| D::Error::custom(e.to_string()))
    } else {
        v.deserialize::<RemoteWriteConfig>()
            .map(|c| vec![c])
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// Strips userinfo and replaces the query string of a URL so it can be logged.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let tail = match tail.find('?') {
        Some(q) => format!("{}?<redacted>", &tail[..q]),
        None => tail.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{host}{tail}"),
        None => format!("{host}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn from_toml(s: &str) -> Result<RemoteWriteConfig, String> {
        toml::from_str::<RemoteWriteConfig>(s).map_err(|e| e.to_string())
    }

    fn cfg() -> RemoteWriteConfig {
        RemoteWriteConfig {
            url: "http://127.0.0.1:9090/api/v1/write".into(),
            ..RemoteWriteConfig::default()
        }
    }

    #[test]
    fn every_duration_key_accepts_the_same_forms_as_the_others() {
        // The forms `Dur` (every other duration key) accepts, with what they mean.
        let forms: &[(&str, Duration)] = &[
            ("5", Duration::from_secs(5)),
            ("2.5", Duration::from_millis(2500)),
            ("\"5\"", Duration::from_secs(5)),
            ("\"1.5s\"", Duration::from_millis(1500)),
            ("\"1m30s\"", Duration::from_secs(90)),
            ("\"2s 500ms\"", Duration::from_millis(2500)),
            ("\"250ms\"", Duration::from_millis(250)),
        ];
        for key in ["push_interval", "timeout", "min_backoff", "max_backoff"] {
            for (text, want) in forms {
                let doc = format!("url = \"http://127.0.0.1:9090/api/v1/write\"\n{key} = {text}");
                let c = from_toml(&doc).unwrap_or_else(|e| panic!("{key} = {text}: {e}"));
                let got = match key {
                    "push_interval" => c.push_interval,
                    "timeout" => c.timeout,
                    "min_backoff" => c.min_backoff,
                    _ => c.max_backoff,
                };
                assert_eq!(got.get(), *want, "{key} = {text}");
                // The same text means the same for a key outside remote-write.
                let other: Dur = toml::from_str::<BTreeMap<String, Dur>>(&format!("d = {text}"))
                    .expect("Dur")["d"];
                assert_eq!(got, other, "{key} = {text}");
            }
            for bad in ["\"fast\"", "-1", "\"\""] {
                let doc = format!("url = \"http://x\"\n{key} = {bad}");
                let e = from_toml(&doc).expect_err(bad);
                assert!(e.contains(key), "{key} = {bad}: {e}");
            }
        }
    }

    #[test]
    fn defaults_and_validation_name_the_key() {
        let c = from_toml(r#"url = "http://127.0.0.1:9090/api/v1/write""#).expect("parse");
        assert_eq!(c.push_interval, Dur::secs(5));
        assert_eq!(c.timeout, Dur::secs(10));
        assert_eq!(c.queue_capacity, 720);
        assert!(c.validate().is_ok());

        let c = from_toml(
            r#"
            url = "https://prom.example/api/v1/write"
            push_interval = "2s 500ms"
            timeout = "3s"
            max_backoff = "1s"
            headers = { "X-Scope-OrgID" = "t" }
            tls = { insecure_skip_verify = true }
            basic_auth = { username = "u", password_env = "RW_PW" }
            "#,
        )
        .expect("parse");
        assert_eq!(c.push_interval, Dur::millis(2500));
        assert!(c.validate().is_ok());
        let err = from_toml("url = \"http://x\"\nbogus = 1").expect_err("unknown key");
        assert!(err.contains("bogus"), "{err}");

        let check = |mutate: &dyn Fn(&mut RemoteWriteConfig), key: &str| {
            let mut c = cfg();
            mutate(&mut c);
            let msg = c.validate().expect_err("must fail").to_string();
            assert!(msg.contains(&format!("remote_write.{key}")), "{key}: {msg}");
        };
        check(&|c| c.push_interval = Dur::millis(500), "push_interval");
        check(&|c| c.url = String::new(), "url");
        check(&|c| c.url = "ftp://x/y".into(), "url");
        check(&|c| c.timeout = Dur::secs(0), "timeout");
        check(&|c| c.queue_capacity = 0, "queue_capacity");
        check(&|c| c.max_backoff = Dur::millis(1), "max_backoff");
        check(
            &|c| {
                c.bearer_token = Some(Secret("a".into()));
                c.bearer_token_env = Some("B".into());
            },
            "bearer_token",
        );
        check(
            &|c| {
                c.basic_auth = Some(BasicAuth {
                    username: "u".into(),
                    ..BasicAuth::default()
                })
            },
            "basic_auth.password",
        );
        check(
            &|c| {
                c.headers.insert("Content-Encoding".into(), "gzip".into());
            },
            "headers",
        );
        check(
            &|c| {
                c.tls.ca_file = Some("/nonexistent".into());
                c.tls.insecure_skip_verify = true;
            },
            "tls.insecure_skip_verify",
        );
        // Schemes are case-insensitive.
        let mut c = cfg();
        c.url = "HTTPS://prom.example/api/v1/write".into();
        assert!(c.parse_url().expect("url").https);
    }

    #[test]
    fn debug_and_urls_never_show_secrets() {
        let mut c = cfg();
        c.url = "https://u:topsecret@host:9090/api/v1/write?token=abc".into();
        c.bearer_token = Some(Secret("tok-123".into()));
        c.basic_auth = Some(BasicAuth {
            username: "u".into(),
            password: Some(Secret("pw-456".into())),
            ..BasicAuth::default()
        });
        c.headers.insert("X-Api-Key".into(), "key-789".into());
        let dbg = format!("{c:?}");
        for secret in ["topsecret", "tok-123", "pw-456", "key-789", "abc"] {
            assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
        }
        assert_eq!(
            redact_url("https://u:p@host:9090/api/v1/write?token=abc"),
            "https://host:9090/api/v1/write?<redacted>"
        );
        assert_eq!(redact_url("http://host/x"), "http://host/x");
        assert_eq!(redact_url("http://a@b@host"), "http://host");
    }
}
