//! The plan: a validated [`Config`] turned into what the workers execute — parsed URLs and
//! headers, static bodies as `Bytes`, per-scenario schedules, and one index per request and per
//! check so the hot path records by number, never by string.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Uri};

use crate::config::{
    Checks, Config, ConfigError, ExecutorKind, ExtractSource, RequestConfig, ScenarioConfig,
    ThinkTime,
};
pub use crate::http::client::{ClientOptions, Target};
use crate::template::{Template, VarTable, initial_values, process_env, table_from};
use crate::threshold::Threshold;

/// What the workers run.
#[derive(Debug)]
pub struct Plan {
    /// The run id.
    pub run_id: String,
    /// Scenarios, in config order.
    pub scenarios: Vec<ScenarioPlan>,
    /// Every request of every scenario, by global id.
    pub requests: Vec<RequestMeta>,
    /// Every check, by global id.
    pub checks: Vec<CheckMeta>,
    /// Distinct servers, by id.
    pub targets: Vec<Target>,
    /// Parsed thresholds.
    pub thresholds: Vec<Threshold>,
    /// Grace period for in-flight iterations at the end.
    pub graceful_stop: Duration,
    /// Worker threads.
    pub workers: usize,
    /// HTTP client settings.
    pub client: ClientOptions,
    /// The configuration the plan came from.
    pub config: Config,
}

/// Reporting facts about one request definition.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// The name (`url.template`).
    pub name: Arc<str>,
    /// The method.
    pub method: Method,
    /// Scenario index.
    pub scenario: usize,
    /// Target id.
    pub target: usize,
}

/// What a check tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// Status is one of these.
    Status(Vec<u16>),
    /// Body contains this text.
    BodyContains(String),
    /// An extraction into this variable found a value.
    Extract(String),
}

/// Reporting facts about one check.
#[derive(Clone, Debug)]
pub struct CheckMeta {
    /// Display name, e.g. `status in [200]`.
    pub name: Arc<str>,
    /// The request it belongs to.
    pub request: usize,
    /// Scenario index.
    pub scenario: usize,
}

/// How a scenario's VUs are paced.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Fixed VUs until a duration and/or an iteration cap.
    ConstantVus {
        /// VUs.
        vus: u64,
        /// Run length.
        duration: Option<Duration>,
        /// Iteration cap.
        iterations: Option<u64>,
    },
    /// VUs moved linearly through stages.
    RampingVus {
        /// VUs at the start.
        start: f64,
        /// (stage length, target VUs).
        stages: Vec<(Duration, f64)>,
    },
    /// A total number of iterations shared by the VUs.
    SharedIterations {
        /// VUs.
        vus: u64,
        /// Total iterations.
        iterations: u64,
        /// Optional time limit.
        max_duration: Option<Duration>,
    },
    /// Iterations started at a rate moved linearly through stages (a constant rate is one
    /// stage from `rate` to `rate`).
    ArrivalRate {
        /// Rate at the start (iterations/s).
        start: f64,
        /// (stage length, target rate).
        stages: Vec<(Duration, f64)>,
        /// Pre-allocated VUs: the most iterations in flight at once.
        vus: u64,
    },
}

impl Schedule {
    /// VUs that must exist.
    pub fn max_vus(&self) -> u64 {
        match self {
            Schedule::ConstantVus { vus, .. }
            | Schedule::SharedIterations { vus, .. }
            | Schedule::ArrivalRate { vus, .. } => *vus,
            Schedule::RampingVus { start, stages } => {
                stages.iter().map(|s| s.1).fold(*start, f64::max).ceil() as u64
            }
        }
    }

    /// Planned length, if bounded by time.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            Schedule::ConstantVus { duration, .. } => *duration,
            Schedule::SharedIterations { max_duration, .. } => *max_duration,
            Schedule::RampingVus { stages, .. } | Schedule::ArrivalRate { stages, .. } => {
                Some(stages.iter().map(|s| s.0).sum())
            }
        }
    }

    /// Whether this is an open-model (arrival-rate) schedule.
    pub fn is_open(&self) -> bool {
        matches!(self, Schedule::ArrivalRate { .. })
    }
}

/// One scenario, ready to run.
#[derive(Debug)]
pub struct ScenarioPlan {
    /// Index in [`Plan::scenarios`].
    pub index: usize,
    /// Name.
    pub name: Arc<str>,
    /// Pacing.
    pub schedule: Schedule,
    /// Requests each VU sends once before its first iteration.
    pub on_start: Vec<RequestPlan>,
    /// Tasks: each iteration runs one, chosen by smooth weighted round-robin.
    pub tasks: Vec<Vec<RequestPlan>>,
    /// Task weights.
    pub weights: Vec<u32>,
    /// Pause after each iteration.
    pub think_time: Option<ThinkTime>,
    /// Initial VU variable values, by index.
    pub initial_vars: Vec<String>,
}

/// A URL: fixed, or rendered per request.
#[derive(Clone, Debug)]
pub enum UrlPlan {
    /// Parsed once (origin-form for HTTP/1.1, absolute for HTTP/2).
    Static(Uri),
    /// Rendered then parsed per request; `origin_form` strips scheme and authority.
    Dynamic {
        /// The full URL template.
        template: Template,
        /// Send only path and query (HTTP/1.1).
        origin_form: bool,
    },
}

/// A header value: fixed or rendered per request.
#[derive(Clone, Debug)]
pub enum HeaderPlan {
    /// Fixed.
    Static(HeaderValue),
    /// Rendered per request.
    Dynamic(Template),
}

/// A body: fixed or rendered per request.
#[derive(Clone, Debug)]
pub enum BodyPlan {
    /// Fixed.
    Static(Bytes),
    /// Rendered per request.
    Dynamic(Template),
}

/// One request, ready to send.
#[derive(Clone, Debug)]
pub struct RequestPlan {
    /// Global request id.
    pub id: usize,
    /// Method.
    pub method: Method,
    /// Target id.
    pub target: usize,
    /// URL.
    pub url: UrlPlan,
    /// Headers, in order (later entries override earlier ones of the same name).
    pub headers: Vec<(HeaderName, HeaderPlan)>,
    /// Body.
    pub body: Option<BodyPlan>,
    /// (variable index, source).
    pub extract: Vec<(usize, ExtractSource, usize)>,
    /// (check id, kind).
    pub checks: Vec<(usize, CheckKind)>,
    /// Whether the response body must be kept (extraction from JSON or a body check).
    pub keep_body: bool,
    /// Pause after this request.
    pub think_time: Option<ThinkTime>,
    /// HTTP/1.1 only: the complete wire bytes, when nothing in the request varies per VU.
    pub wire: Option<Bytes>,
    /// Whether the response to this request has no body (HEAD).
    pub head: bool,
    /// Whether an extraction needs the response headers.
    pub keep_headers: bool,
}

/// Serializes a fully static HTTP/1.1 request once, at plan time.
fn static_wire(
    method: &Method,
    url: &UrlPlan,
    headers: &[(HeaderName, HeaderPlan)],
    body: Option<&BodyPlan>,
) -> Option<Bytes> {
    let UrlPlan::Static(uri) = url else {
        return None;
    };
    let mut hs = Vec::with_capacity(headers.len());
    for (n, h) in headers {
        match h {
            HeaderPlan::Static(v) => hs.push((n.clone(), v.clone())),
            HeaderPlan::Dynamic(_) => return None,
        }
    }
    let body: &[u8] = match body {
        Some(BodyPlan::Static(b)) => b,
        Some(BodyPlan::Dynamic(_)) => return None,
        None => &[],
    };
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Vec::new();
    crate::http::h1::write_request(&mut out, method, pq, &hs, body);
    Some(Bytes::from(out))
}

const USER_AGENT_VALUE: &str = concat!("stampede/", env!("CARGO_PKG_VERSION"));

/// Builds the plan. `origin` names the config file for error messages.
pub fn build(config: Config, run_id: String, origin: &str) -> Result<Plan, ConfigError> {
    let mut b = Builder {
        origin,
        requests: Vec::new(),
        checks: Vec::new(),
        targets: Vec::new(),
        http2: config.defaults.http2,
    };
    let mut scenarios = Vec::new();
    for (i, sc) in config.scenarios.iter().enumerate() {
        scenarios.push(b.scenario(i, sc, &config)?);
    }
    let thresholds = config
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Threshold::parse(t).map_err(|e| {
                ConfigError::invalid(origin, format!("thresholds[{i}]"), e.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let workers = config.run.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    Ok(Plan {
        run_id,
        scenarios,
        requests: b.requests,
        checks: b.checks,
        targets: b.targets,
        thresholds,
        graceful_stop: config.run.graceful_stop.get(),
        workers,
        client: ClientOptions {
            timeout: config.defaults.timeout.get(),
            connect_timeout: config.defaults.connect_timeout.get(),
            http2: config.defaults.http2,
            insecure: config.defaults.insecure,
        },
        config,
    })
}

struct Builder<'a> {
    origin: &'a str,
    requests: Vec<RequestMeta>,
    checks: Vec<CheckMeta>,
    targets: Vec<Target>,
    http2: bool,
}

impl Builder<'_> {
    fn err(&self, key: String, msg: impl Into<String>) -> ConfigError {
        ConfigError::invalid(self.origin, key, msg)
    }

    fn scenario(
        &mut self,
        index: usize,
        sc: &ScenarioConfig,
        cfg: &Config,
    ) -> Result<ScenarioPlan, ConfigError> {
        let at = format!("scenarios[{index}]");
        let extracted: Vec<&String> = sc
            .on_start
            .iter()
            .chain(sc.requests.iter())
            .chain(sc.tasks.iter().flat_map(|t| t.requests.iter()))
            .flat_map(|r| r.extract.keys())
            .collect();
        let vars = table_from(sc.variables.keys(), extracted);
        let base = sc.base_url.as_ref().or(cfg.defaults.base_url.as_ref());
        let mut headers: Vec<(String, String)> = cfg
            .defaults
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        headers.extend(sc.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let ctx = ReqCtx {
            scenario: index,
            base: base.map(String::as_str),
            headers: &headers,
            vars: &vars,
        };
        let mut on_start = Vec::new();
        for (r, rc) in sc.on_start.iter().enumerate() {
            on_start.push(self.request(&ctx, rc, &format!("{at}.on_start[{r}]"))?);
        }
        let mut tasks = Vec::new();
        let mut weights = Vec::new();
        if !sc.requests.is_empty() {
            let mut reqs = Vec::new();
            for (r, rc) in sc.requests.iter().enumerate() {
                reqs.push(self.request(&ctx, rc, &format!("{at}.requests[{r}]"))?);
            }
            tasks.push(reqs);
            weights.push(1);
        }
        for (t, task) in sc.tasks.iter().enumerate() {
            let mut reqs = Vec::new();
            for (r, rc) in task.requests.iter().enumerate() {
                reqs.push(self.request(&ctx, rc, &format!("{at}.tasks[{t}].requests[{r}]"))?);
            }
            tasks.push(reqs);
            weights.push(task.weight);
        }
        let schedule = schedule(sc);
        Ok(ScenarioPlan {
            index,
            name: Arc::from(sc.name.as_str()),
            schedule,
            on_start,
            tasks,
            weights,
            think_time: sc.think_time.clone(),
            initial_vars: initial_values(&vars, &sc.variables),
        })
    }

    fn request(
        &mut self,
        ctx: &ReqCtx<'_>,
        rc: &RequestConfig,
        at: &str,
    ) -> Result<RequestPlan, ConfigError> {
        let origin = self.origin;
        let tmpl = |text: &str, key: &str| {
            Template::parse(text, ctx.vars, &process_env)
                .map_err(|e| ConfigError::invalid(origin, format!("{at}.{key}"), e.to_string()))
        };
        let method_txt = rc.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method = Method::from_bytes(method_txt.as_bytes()).map_err(|_| {
            self.err(
                format!("{at}.method"),
                format!("invalid method `{method_txt}`"),
            )
        })?;
        if rc.url.is_empty() {
            return Err(self.err(format!("{at}.url"), "must not be empty"));
        }
        let mut full = if crate::http::url::strip_http_scheme(&rc.url).is_some() {
            rc.url.clone()
        } else {
            let base = ctx.base.ok_or_else(|| {
                self.err(
                    format!("{at}.url"),
                    format!(
                        "`{}` is relative but no base_url is set (defaults.base_url, the scenario's base_url, or --url)",
                        crate::http::url::split_credentials(&rc.url).0
                    ),
                )
            })?;
            join_url(base, &rc.url)
        };
        if !rc.query.is_empty() {
            full.push(if full.contains('?') { '&' } else { '?' });
            let q: Vec<String> = rc
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
                .collect();
            full.push_str(&q.join("&"));
        }
        // user:password@ in the URL becomes a basic-auth header and leaves the URL (and every
        // message that quotes it).
        let (full, credentials) = crate::http::url::split_credentials(&full);
        let url_t = tmpl(&full, "url")?;
        // The server must be fixed: render with two different fillers and compare.
        let probe = |fill: &str| {
            let vals = crate::template::Vars {
                values: vec![fill.to_string(); ctx.vars.len()],
                vu: 1,
                iteration: 1,
            };
            url_t.render(&vals)
        };
        let (u1, u2) = (probe("a"), probe("b"));
        let p1: Uri = u1.parse().map_err(|e| {
            self.err(
                format!("{at}.url"),
                format!("`{full}` is not a valid URL: {e}"),
            )
        })?;
        let p2: Uri = u2.parse().map_err(|e| {
            self.err(
                format!("{at}.url"),
                format!("`{full}` is not a valid URL: {e}"),
            )
        })?;
        if p1.authority() != p2.authority() || p1.scheme() != p2.scheme() {
            return Err(self.err(
                format!("{at}.url"),
                "the scheme and host may use ${env.X} but not per-VU variables",
            ));
        }
        let tls = match p1.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(self.err(
                    format!("{at}.url"),
                    format!("`{full}`: only http:// and https:// URLs are supported"),
                ));
            }
        };
        let auth = p1
            .authority()
            .ok_or_else(|| self.err(format!("{at}.url"), format!("`{full}` has no host")))?;
        let target = Target {
            tls,
            host: auth
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: auth.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: auth.as_str().to_string(),
        };
        let target_id = match self.targets.iter().position(|t| *t == target) {
            Some(i) => i,
            None => {
                self.targets.push(target.clone());
                self.targets.len() - 1
            }
        };
        let origin_form = !self.http2;
        let url = match url_t.as_static() {
            Some(s) => {
                let uri: Uri = s.parse().map_err(|e| {
                    self.err(
                        format!("{at}.url"),
                        format!("`{s}` is not a valid URL: {e}"),
                    )
                })?;
                UrlPlan::Static(if origin_form {
                    to_origin_form(&uri)
                } else {
                    uri
                })
            }
            None => UrlPlan::Dynamic {
                template: url_t.clone(),
                origin_form,
            },
        };
        // Name: explicit, or the path of the URL as written (variables kept as `${x}`).
        let name: Arc<str> = match &rc.name {
            Some(n) => Arc::from(n.as_str()),
            None => Arc::from(path_of(&rc.url)),
        };

        let mut headers: Vec<(HeaderName, HeaderPlan)> = Vec::new();
        let mut push_header = |k: &str, v: &str, key: String| -> Result<(), ConfigError> {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| self.err(key.clone(), format!("invalid header name `{k}`")))?;
            let t = Template::parse(v, ctx.vars, &process_env)
                .map_err(|e| self.err(key.clone(), e.to_string()))?;
            let hp = match t.as_static() {
                Some(s) => HeaderPlan::Static(HeaderValue::from_str(s).map_err(|_| {
                    self.err(key.clone(), format!("invalid value for header `{k}`"))
                })?),
                None => HeaderPlan::Dynamic(t),
            };
            headers.retain(|(n, _)| *n != name);
            headers.push((name, hp));
            Ok(())
        };
        if !self.http2 {
            push_header(HOST.as_str(), &target.authority, format!("{at}.url"))?;
        }
        if let Some(c) = &credentials {
            push_header(
                http::header::AUTHORIZATION.as_str(),
                &c.basic_auth(),
                format!("{at}.url"),
            )?;
        }
        push_header(
            USER_AGENT.as_str(),
            USER_AGENT_VALUE,
            format!("{at}.headers"),
        )?;
        let body = match (&rc.body, &rc.json) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    format!("{at}.body"),
                    "give either `body` or `json`, not both",
                ));
            }
            (Some(b), None) => Some(tmpl(b, "body")?),
            (None, Some(j)) => {
                push_header(
                    CONTENT_TYPE.as_str(),
                    "application/json",
                    format!("{at}.json"),
                )?;
                let text = serde_json::to_string(j)
                    .map_err(|e| self.err(format!("{at}.json"), e.to_string()))?;
                Some(tmpl(&text, "json")?)
            }
            (None, None) => None,
        };
        for (k, v) in ctx.headers {
            push_header(k, v, format!("{at}.headers.{k}"))?;
        }
        for (k, v) in &rc.headers {
            push_header(k, v, format!("{at}.headers.{k}"))?;
        }
        let body = body.map(|t| match t.as_static() {
            Some(s) => BodyPlan::Static(Bytes::copy_from_slice(s.as_bytes())),
            None => BodyPlan::Dynamic(t),
        });

        let id = self.requests.len();
        self.requests.push(RequestMeta {
            name: name.clone(),
            method: method.clone(),
            scenario: ctx.scenario,
            target: target_id,
        });
        let mut checks = Vec::new();
        let mut keep_body = false;
        if let Some(Checks {
            status,
            body_contains,
        }) = &rc.checks
        {
            if !status.is_empty() {
                let list: Vec<String> = status.iter().map(u16::to_string).collect();
                checks.push((
                    self.check(format!("status in [{}]", list.join(",")), id, ctx.scenario),
                    CheckKind::Status(status.clone()),
                ));
            }
            if let Some(text) = body_contains {
                keep_body = true;
                checks.push((
                    self.check(format!("body contains {text:?}"), id, ctx.scenario),
                    CheckKind::BodyContains(text.clone()),
                ));
            }
        }
        let mut extract = Vec::new();
        for (var, src) in &rc.extract {
            if matches!(src, ExtractSource::Json(_)) {
                keep_body = true;
            }
            if let ExtractSource::Json(p) = src
                && !(p.is_empty() || p.starts_with('/'))
            {
                return Err(self.err(
                    format!("{at}.extract.{var}"),
                    format!("JSON pointer `{p}` must start with `/` (e.g. \"/data/token\")"),
                ));
            }
            let idx = ctx.vars.get(var).unwrap_or_default();
            let check = self.check(format!("extract {var}"), id, ctx.scenario);
            checks.push((check, CheckKind::Extract(var.clone())));
            extract.push((idx, src.clone(), check));
        }
        let wire = if self.http2 {
            None
        } else {
            static_wire(&method, &url, &headers, body.as_ref())
        };
        let keep_headers = extract
            .iter()
            .any(|(_, s, _)| matches!(s, ExtractSource::Header(_)));
        Ok(RequestPlan {
            id,
            head: method == Method::HEAD,
            keep_headers,
            wire,
            method,
            target: target_id,
            url,
            headers,
            body,
            extract,
            checks,
            keep_body,
            think_time: rc.think_time.clone(),
        })
    }

    fn check(&mut self, name: String, request: usize, scenario: usize) -> usize {
        self.checks.push(CheckMeta {
            name: Arc::from(name),
            request,
            scenario,
        });
        self.checks.len() - 1
    }
}

struct ReqCtx<'a> {
    scenario: usize,
    base: Option<&'a str>,
    headers: &'a [(String, String)],
    vars: &'a VarTable,
}

fn schedule(sc: &ScenarioConfig) -> Schedule {
    let stages = || -> Vec<(Duration, f64)> {
        sc.stages
            .iter()
            .map(|s| (s.duration.get(), s.target))
            .collect()
    };
    match sc.executor_kind() {
        ExecutorKind::ConstantVus => Schedule::ConstantVus {
            vus: sc.vus.unwrap_or(1),
            duration: sc.duration.map(|d| d.get()),
            iterations: sc.iterations,
        },
        ExecutorKind::RampingVus => Schedule::RampingVus {
            start: sc.start.unwrap_or(0.0),
            stages: stages(),
        },
        ExecutorKind::SharedIterations => Schedule::SharedIterations {
            vus: sc.vus.unwrap_or(1),
            iterations: sc.iterations.unwrap_or(1),
            max_duration: sc.duration.map(|d| d.get()),
        },
        ExecutorKind::ConstantArrivalRate => {
            let rate = sc.rate.unwrap_or(1.0);
            Schedule::ArrivalRate {
                start: rate,
                stages: vec![(sc.duration.map(|d| d.get()).unwrap_or_default(), rate)],
                vus: sc.vus.unwrap_or_else(|| default_open_vus(rate)),
            }
        }
        ExecutorKind::RampingArrivalRate => {
            let start = sc.start.unwrap_or(0.0);
            let peak = sc.stages.iter().map(|s| s.target).fold(start, f64::max);
            Schedule::ArrivalRate {
                start,
                stages: stages(),
                vus: sc.vus.unwrap_or_else(|| default_open_vus(peak)),
            }
        }
    }
}

/// Enough VUs for 100 ms of latency at the peak rate, within [10, 2000].
fn default_open_vus(rate: f64) -> u64 {
    ((rate * 0.1).ceil() as u64).clamp(10, 2000)
}

fn join_url(base: &str, path: &str) -> String {
    match (base.ends_with('/'), path.starts_with('/')) {
        (true, true) => format!("{}{}", base.trim_end_matches('/'), path),
        (false, false) => format!("{base}/{path}"),
        _ => format!("{base}{path}"),
    }
}

fn path_of(url: &str) -> String {
    let after_scheme = crate::http::url::strip_http_scheme(url)
        .map(|(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]))
        .unwrap_or(url);
    let path = after_scheme.split('?').next().unwrap_or("/");
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}

fn to_origin_form(uri: &Uri) -> Uri {
    uri.path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"))
}

fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b'$' || b == b'{' || b == b'}' {
            // Keep template markers intact; values are rendered later.
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, load};

    fn plan_of(toml: &str) -> Result<Plan, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, toml).unwrap();
        let cfg = load(Some(&p), &Overrides::default())?;
        build(cfg, "t".into(), "s.toml")
    }

    #[test]
    fn joins_names_and_queries() {
        let plan = plan_of(
            r#"
            [defaults]
            base_url = "http://127.0.0.1:9528/"
            [[scenarios]]
            vus = 1
            duration = "1s"
            [[scenarios.requests]]
            url = "/newsql/api/getTablesByAppId"
            query = { appId = "1" }
            "#,
        )
        .unwrap();
        let r = &plan.scenarios[0].tasks[0][0];
        match &r.url {
            UrlPlan::Static(u) => assert_eq!(u, "/newsql/api/getTablesByAppId?appId=1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(&*plan.requests[0].name, "/newsql/api/getTablesByAppId");
        assert_eq!(plan.targets[0].port, 9528);
        assert!(r.headers.iter().any(|(n, _)| n == HOST));
    }

    #[test]
    fn credentials_in_urls_become_basic_auth_and_leave_the_url() {
        let plan = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            requests = [{ url = "http://load:s%40cret@127.0.0.1:9/x" }]
            "#,
        )
        .unwrap();
        let r = &plan.scenarios[0].tasks[0][0];
        let wire = String::from_utf8(r.wire.as_ref().unwrap().to_vec()).unwrap();
        assert!(
            wire.contains(&format!(
                "authorization: Basic {}",
                crate::http::url::base64(b"load:s@cret")
            )),
            "{wire}"
        );
        assert!(!wire.contains("s%40cret@"), "{wire}");
        assert_eq!(plan.targets[0].authority, "127.0.0.1:9");
        assert_eq!(&*plan.requests[0].name, "/x");
    }

    #[test]
    fn relative_url_without_base_is_an_error() {
        let e = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            requests = [{ url = "/x" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("scenarios[0].requests[0].url"), "{e}");
    }

    #[test]
    fn dynamic_host_is_rejected_but_dynamic_path_is_fine() {
        let e = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            variables = { h = "x" }
            requests = [{ url = "http://${h}/x" }]
            "#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("per-VU variables"), "{e}");
        let p = plan_of(
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            variables = { id = "7" }
            requests = [{ url = "http://127.0.0.1:1/items/${id}" }]
            "#,
        )
        .unwrap();
        assert_eq!(&*p.requests[0].name, "/items/${id}");
        assert!(matches!(
            p.scenarios[0].tasks[0][0].url,
            UrlPlan::Dynamic { .. }
        ));
    }

    #[test]
    fn schedules_follow_the_executor() {
        let p = plan_of(
            r#"
            [defaults]
            base_url = "http://127.0.0.1:1"
            [[scenarios]]
            name = "a"
            rate = 200
            duration = "10s"
            requests = [{ url = "/" }]
            [[scenarios]]
            name = "b"
            stages = [{ duration = "5s", target = 20 }, { duration = "5s", target = 0 }]
            requests = [{ url = "/" }]
            [[scenarios]]
            name = "c"
            iterations = 100
            vus = 4
            requests = [{ url = "/" }]
            "#,
        )
        .unwrap();
        assert_eq!(
            p.scenarios[0].schedule,
            Schedule::ArrivalRate {
                start: 200.0,
                stages: vec![(Duration::from_secs(10), 200.0)],
                vus: 20
            }
        );
        assert_eq!(p.scenarios[1].schedule.max_vus(), 20);
        assert_eq!(
            p.scenarios[2].schedule,
            Schedule::SharedIterations {
                vus: 4,
                iterations: 100,
                max_duration: None
            }
        );
    }
}
