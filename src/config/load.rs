//! Loading: figment layers defaults < file < `STAMPEDE_*` env < flags (the flags' own layer is
//! [`super::flags`]), then the flags that apply to every scenario (VUs, rate, stages, duration,
//! iterations), to every remote-write target, or describe an ad-hoc run. Errors name the file
//! and line, the environment variable or the flag, and suggest the closest known key.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml, Yaml};

use super::error::ConfigError;
use super::flags::FlagLayer;
use super::{Config, Dur, ExecutorKind, Overrides, RequestConfig, ScenarioConfig, TaskConfig};

/// The environment layer's prefix.
pub(crate) const ENV_PREFIX: &str = "STAMPEDE_";

/// The origin named in messages about flags.
const COMMAND_LINE: &str = "command line";

/// A configuration file's syntax, from its name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    Toml,
    Yaml,
}

impl Syntax {
    fn of(name: &str) -> Option<Syntax> {
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("toml") => Some(Syntax::Toml),
            Some("yaml" | "yml") => Some(Syntax::Yaml),
            _ => None,
        }
    }
}

/// The file layer: its text, its syntax and the name used in messages.
struct FileLayer<'a> {
    origin: &'a str,
    text: &'a str,
    syntax: Syntax,
}

/// Loads and merges the configuration (defaults < `file` < `STAMPEDE_*` env < flags), then
/// validates it. Without a file, the flags describe an ad-hoc run.
pub fn load(file: Option<&Path>, ov: &Overrides) -> Result<Config, ConfigError> {
    load_with_env_prefix(file, ov, ENV_PREFIX)
}

/// Like [`load`], with the file layer given as text: `name` names it in messages and its
/// extension (`.toml`, `.yaml`, `.yml`) gives the syntax, e.g. `load_str("demo.toml", text, ov)`.
pub fn load_str(name: &str, text: &str, ov: &Overrides) -> Result<Config, ConfigError> {
    let syntax = Syntax::of(name).ok_or_else(|| ConfigError::Format(PathBuf::from(name)))?;
    let layer = FileLayer {
        origin: name,
        text,
        syntax,
    };
    load_layers(Some(&layer), ov, ENV_PREFIX)
}

fn load_with_env_prefix(
    file: Option<&Path>,
    ov: &Overrides,
    env_prefix: &str,
) -> Result<Config, ConfigError> {
    let Some(path) = file else {
        return load_layers(None, ov, env_prefix);
    };
    let origin = path.display().to_string();
    let syntax = Syntax::of(&origin).ok_or_else(|| ConfigError::Format(path.to_path_buf()))?;
    // Read it ourselves so a missing file is reported as such (figment would skip it), and so
    // that messages can point at a line.
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let layer = FileLayer {
        origin: &origin,
        text: &text,
        syntax,
    };
    load_layers(Some(&layer), ov, env_prefix)
}

fn load_layers(
    file: Option<&FileLayer<'_>>,
    ov: &Overrides,
    env_prefix: &str,
) -> Result<Config, ConfigError> {
    let origin = file.map_or(COMMAND_LINE, |f| f.origin);
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = file {
        fig = match f.syntax {
            Syntax::Toml => fig.merge(Named::new(f.origin, Toml::string(f.text))),
            Syntax::Yaml => fig.merge(Named::new(f.origin, Yaml::string(f.text))),
        };
    }
    // Only nested keys (`STAMPEDE_RUN__ID`): every top-level key is a table, and variables
    // such as `STAMPEDE_LOG` (log filter) are not configuration.
    fig = fig.merge(
        Env::prefixed(env_prefix)
            .split("__")
            .ignore(&["config"])
            .filter(|k| k.as_str().contains('.')),
    );
    // `admerge`: `--threshold` adds to the file's list; every other flag replaces its key.
    fig = fig.admerge(FlagLayer(ov));
    let mut cfg: Config = fig
        .extract()
        .map_err(|e| ConfigError::Figment(describe(e, file, env_prefix)))?;
    apply_scenario_overrides(&mut cfg, file.is_some(), ov, origin)?;
    super::validate(&cfg, origin)?;
    Ok(cfg)
}

/// A provider under another name: figment's string providers call themselves "TOML source
/// string"; messages should name the file.
struct Named<P> {
    name: String,
    inner: P,
}

impl<P> Named<P> {
    fn new(name: &str, inner: P) -> Named<P> {
        Named {
            name: name.to_string(),
            inner,
        }
    }
}

impl<P: figment::Provider> figment::Provider for Named<P> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.name.clone())
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        self.inner.data()
    }
}

/// Words figment's errors (one per line): where (file and line, environment variable, or
/// command line), which key, what is wrong, and for a misspelt key or value the closest known one.
fn describe(e: figment::Error, file: Option<&FileLayer<'_>>, env_prefix: &str) -> String {
    e.into_iter()
        .map(|e| {
            let problem = Problem::of(&e);
            let name = e.metadata.as_ref().map(|m| m.name.to_string());
            let in_file = file.filter(|f| name.as_deref() == Some(f.origin));
            let place = match (in_file, name.as_deref()) {
                (Some(f), _) => match locate(f, &problem.path) {
                    Some(line) => format!("{}: line {line}", f.origin),
                    None => f.origin.to_string(),
                },
                (None, Some(n)) if n.contains("environment") => format!(
                    "environment variable {env_prefix}{}",
                    e.path.join("__").to_ascii_uppercase()
                ),
                (None, Some("command-line flags")) => COMMAND_LINE.to_string(),
                (None, Some(n)) => n.to_string(),
                (None, None) => "configuration".to_string(),
            };
            format!("{place}: {}", problem.text.trim_end())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One error, worded: `text`, and the key `path` to look for in the file.
struct Problem {
    path: Vec<String>,
    text: String,
}

impl Problem {
    fn of(e: &figment::Error) -> Problem {
        use figment::error::Kind;
        let key = key_path(&e.path);
        // A table deserialized by hand (`metrics.remote_write`: one table or a list) passes
        // figment's own unknown-field message up as text.
        if let Kind::Message(m) = &e.kind
            && let Some((found, known)) = parse_unknown_field(m)
        {
            let text = unknown_key(&found, &key, &known);
            let mut path = e.path.clone();
            path.push(found);
            return Problem { path, text };
        }
        let text = match &e.kind {
            Kind::UnknownField(found, known) => unknown_key(
                found,
                &key_path(&e.path[..e.path.len().saturating_sub(1)]),
                known,
            ),
            Kind::UnknownVariant(found, known) => format!(
                "`{key}`: unknown value `{found}`{} (one of: {})",
                suggestion(found, known.iter().copied()),
                known.join(", ")
            ),
            Kind::MissingField(field) if key.is_empty() => format!("missing key `{field}`"),
            Kind::MissingField(field) => format!("`{key}`: missing key `{field}`"),
            other if key.is_empty() => other.to_string(),
            other => format!("`{key}`: {other}"),
        };
        Problem {
            path: e.path.clone(),
            text,
        }
    }
}

fn unknown_key(found: &str, parent: &str, known: &[impl AsRef<str>]) -> String {
    let at = if parent.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in `{parent}`")
    };
    let known: Vec<&str> = known.iter().map(AsRef::as_ref).collect();
    format!(
        "unknown key `{found}` {at}{} (known keys here: {})",
        suggestion(found, known.iter().copied()),
        known.join(", ")
    )
}

/// figment's "unknown field: found `x`, expected `one of `a`, `b``" → (`x`, [a, b]).
fn parse_unknown_field(m: &str) -> Option<(String, Vec<String>)> {
    let (found, expected) = m
        .strip_prefix("unknown field: found `")?
        .split_once("`, expected ")?;
    let known = expected
        .split('`')
        .filter(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .map(str::to_string)
        .collect();
    Some((found.to_string(), known))
}

fn suggestion<'a>(found: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    crate::suggest::did_you_mean(found, known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// `scenarios.0.requests.1.url` → `scenarios[0].requests[1].url`.
fn key_path(path: &[String]) -> String {
    let mut s = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            s.push_str(&format!("[{part}]"));
        } else {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(part);
        }
    }
    s
}

/// The line of `path` in the file's text: the format's own parser walks to the key and stops
/// there with an error that carries the position.
fn locate(f: &FileLayer<'_>, path: &[String]) -> Option<usize> {
    use serde::de::DeserializeSeed;
    if path.is_empty() {
        return None;
    }
    let find = locate::Find(path);
    match f.syntax {
        Syntax::Toml => {
            let e = find.deserialize(toml::Deserializer::new(f.text)).err()?;
            if !e.message().contains(locate::MARK) {
                return None;
            }
            let start = e.span()?.start;
            Some(f.text.get(..start)?.matches('\n').count() + 1)
        }
        Syntax::Yaml => {
            let e = find
                .deserialize(serde_yaml::Deserializer::from_str(f.text))
                .err()?;
            if !e.to_string().contains(locate::MARK) {
                return None;
            }
            e.location().map(|l| l.line())
        }
    }
}

/// A serde walk to one key path that fails on purpose where it finds it.
mod locate {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// The error text that means "found here".
    pub(super) const MARK: &str = "stampede: key found here";

    /// Walks to `.0` (figment's key path: table keys and array indices).
    pub(super) struct Find<'p>(pub(super) &'p [String]);

    impl<'de> DeserializeSeed<'de> for Find<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Find<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("anything")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let Some((head, rest)) = self.0.split_first() else {
                return Ok(());
            };
            while let Some(hit) = map.next_key_seed(Key {
                name: head,
                last: rest.is_empty(),
            })? {
                if hit {
                    return map.next_value_seed(Find(rest));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let Some((head, rest)) = self.0.split_first() else {
                return Ok(());
            };
            let Ok(index) = head.parse::<usize>() else {
                // A key under a list whose index is unknown: look in every element.
                while seq.next_element_seed(Find(self.0))?.is_some() {}
                return Ok(());
            };
            for _ in 0..index {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
            }
            if rest.is_empty() {
                seq.next_element_seed(Here)?;
            } else {
                seq.next_element_seed(Find(rest))?;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }

    /// A map key: `true` when it is the next step of the path; the error when it is the last.
    struct Key<'p> {
        name: &'p str,
        last: bool,
    }

    impl<'de> DeserializeSeed<'de> for Key<'_> {
        type Value = bool;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for Key<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match (v == self.name, self.last) {
                (true, true) => Err(E::custom(MARK)),
                (hit, _) => Ok(hit),
            }
        }
    }

    /// An array element that is the end of the path.
    struct Here;

    impl<'de> DeserializeSeed<'de> for Here {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(HereVisitor)
        }
    }

    struct HereVisitor;

    impl<'de> Visitor<'de> for HereVisitor {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("anything")
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(MARK))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
            Err(de::Error::custom(MARK))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Err(E::custom(MARK))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Err(E::custom(MARK))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Err(E::custom(MARK))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Err(E::custom(MARK))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
            Err(E::custom(MARK))
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Err(E::custom(MARK))
        }
    }
}

/// The origin (`scheme://authority`) of an absolute http(s) URL and the rest.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let has = |scheme: &str| {
        url.get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
    };
    let scheme_len = if has("http://") {
        7
    } else if has("https://") {
        8
    } else {
        return None;
    };
    let end = url[scheme_len..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| i + scheme_len);
    Some(url.split_at(end))
}

fn apply_scenario_overrides(
    cfg: &mut Config,
    have_file: bool,
    ov: &Overrides,
    origin: &str,
) -> Result<(), ConfigError> {
    for url in &ov.export.remote_write_urls {
        match cfg
            .metrics
            .remote_write
            .iter_mut()
            .find(|rw| rw.url.is_empty())
        {
            Some(rw) => rw.url = url.clone(),
            None => cfg.metrics.remote_write.push(super::RemoteWriteConfig {
                url: url.clone(),
                ..Default::default()
            }),
        }
    }
    for rw in &mut cfg.metrics.remote_write {
        ov.export.remote_write.apply(rw);
        rw.validate()
            .map_err(|e| ConfigError::invalid(origin, "metrics.remote_write", e.to_string()))?;
    }
    if !have_file {
        if ov.urls.is_empty() {
            if cfg.scenarios.is_empty() {
                return Err(ConfigError::invalid(
                    COMMAND_LINE,
                    "--url",
                    "give a config FILE or at least one URL (stampede run http://127.0.0.1:8080/)",
                ));
            }
        } else {
            cfg.scenarios = vec![ad_hoc_scenario(ov)];
        }
    } else {
        for (flag, set) in [
            ("--method", ov.method.is_some()),
            ("--body", ov.body.is_some()),
            ("--json", ov.json.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    COMMAND_LINE,
                    flag,
                    "only applies to ad-hoc runs (no FILE); set it on the requests in the file",
                ));
            }
        }
        match ov.urls.as_slice() {
            [] => {}
            [one] => retarget(cfg, one),
            _ => {
                return Err(ConfigError::invalid(
                    COMMAND_LINE,
                    "--url",
                    "with a config FILE, give --url once: it replaces the base URL and the origin of absolute URLs",
                ));
            }
        }
    }
    for sc in &mut cfg.scenarios {
        reshape(sc, ov);
        if let Some(v) = ov.vus {
            sc.vus = Some(v);
        }
        if let Some(d) = ov.duration {
            sc.duration = Some(d);
        }
        if let Some(i) = ov.iterations {
            sc.iterations = Some(i);
        }
    }
    Ok(())
}

/// `--stage` and `--rate` change a scenario's executor; the keys the new one would ignore go
/// (the flags replace the load shape), while values given by flags stay, so that contradictory
/// flags (`--vus` with a VU ramp) are still reported.
fn reshape(sc: &mut ScenarioConfig, ov: &Overrides) {
    let was = sc.executor_kind();
    if !ov.stages.is_empty() {
        let open = ov.rate.is_some()
            || matches!(
                was,
                ExecutorKind::ConstantArrivalRate | ExecutorKind::RampingArrivalRate
            );
        if open {
            // Stages are rates, from --rate, or from the scenario's own start or rate.
            sc.start = ov.rate.or(sc.start).or(sc.rate);
            sc.executor = Some(ExecutorKind::RampingArrivalRate);
        } else {
            if was != ExecutorKind::RampingVus {
                sc.start = None;
            }
            sc.executor = Some(ExecutorKind::RampingVus);
            sc.vus = None;
        }
        sc.stages = ov.stages.clone();
        sc.rate = None;
        sc.duration = None;
        sc.iterations = None;
    } else if let Some(r) = ov.rate {
        if was != ExecutorKind::ConstantArrivalRate {
            sc.stages.clear();
            sc.start = None;
            sc.iterations = None;
            if sc.executor.is_some() {
                sc.executor = Some(ExecutorKind::ConstantArrivalRate);
            }
        }
        sc.rate = Some(r);
    }
}

/// The scenario that `--url` (and `--method`, `--body`, `--json`) describe without a file, with
/// the ad-hoc defaults: 10 VUs unless `--vus` (with `--rate`, the open model's own default; with
/// `--stage`, the stages), and 10 s unless `--duration`, `--iterations` (closed model) or
/// `--stage` set the length.
fn ad_hoc_scenario(ov: &Overrides) -> ScenarioConfig {
    let mut sc = ScenarioConfig {
        name: "adhoc".into(),
        ..Default::default()
    };
    for url in &ov.urls {
        sc.tasks.push(TaskConfig {
            weight: 1,
            requests: vec![RequestConfig {
                method: ov.method.clone(),
                url: url.clone(),
                body: ov.body.clone(),
                json: ov.json.clone(),
                ..Default::default()
            }],
        });
    }
    let open = ov.rate.is_some();
    if !open && ov.stages.is_empty() {
        sc.vus = Some(AD_HOC_VUS);
    }
    if ov.stages.is_empty() && (open || ov.iterations.is_none()) {
        sc.duration = Some(AD_HOC_DURATION);
    }
    sc
}

/// VUs of an ad-hoc closed-model run without `--vus`.
pub const AD_HOC_VUS: u64 = 10;
/// Length of an ad-hoc run without `--duration`, `--iterations` or `--stage`.
pub const AD_HOC_DURATION: Dur = Dur::secs(10);

/// `--url` with a file: the base URL of relative request URLs, and the origin of absolute ones
/// (so that every request goes where the command line says).
fn retarget(cfg: &mut Config, url: &str) {
    cfg.defaults.base_url = Some(url.to_string());
    let Some((origin, _)) = split_origin(url) else {
        return;
    };
    for sc in &mut cfg.scenarios {
        sc.base_url = None;
        let requests = sc
            .on_start
            .iter_mut()
            .chain(sc.requests.iter_mut())
            .chain(sc.tasks.iter_mut().flat_map(|t| t.requests.iter_mut()));
        for r in requests {
            if let Some((_, rest)) = split_origin(&r.url) {
                r.url = format!("{origin}{rest}");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use super::*;
    use crate::config::OutputFlags;

    /// A prefix no other test uses: environment variables are process-wide. It must not start
    /// with `STAMPEDE_` either, or tests loading with the real prefix would see these variables.
    const PREFIX: &str = "STAMPEDETEST_LAYER_";

    const FILE: &str = r#"
        [run]
        id = "from-file"
        graceful_stop = "3s"
        [defaults]
        timeout = "7s"
        [[scenarios]]
        vus = 4
        duration = "1m"
        requests = [{ url = "http://127.0.0.1:1/" }]
    "#;

    #[test]
    fn layers_defaults_file_env_flags_in_that_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", FILE)?;
            let path = std::path::Path::new("s.toml");
            // Defaults fill what the file leaves out; the file beats defaults.
            let load = |ov: &Overrides| {
                load_with_env_prefix(Some(path), ov, PREFIX).map_err(|e| e.to_string())
            };
            let cfg = load(&Overrides::default())?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-file"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(7));
            assert_eq!(
                cfg.defaults.connect_timeout,
                Dur::secs(5),
                "built-in default"
            );
            assert_eq!(cfg.metrics.interval, None, "unset: OTLP uses its env or 5s");
            // The environment beats the file.
            jail.set_env(format!("{PREFIX}RUN__ID"), "from-env");
            jail.set_env(format!("{PREFIX}DEFAULTS__TIMEOUT"), "9s");
            jail.set_env(format!("{PREFIX}METRICS__INTERVAL"), "2s");
            let cfg = load(&Overrides::default())?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-env"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(9));
            assert_eq!(cfg.metrics.interval, Some(Dur::secs(2)));
            assert_eq!(cfg.run.graceful_stop, Dur::secs(3), "untouched file value");
            // Flags beat the environment, and scenario flags override every scenario.
            let ov = Overrides {
                output: OutputFlags {
                    run_id: Some("from-flag".into()),
                    ..Default::default()
                },
                timeout: Some(Dur::secs(1)),
                vus: Some(9),
                duration: Some(Dur::secs(30)),
                ..Default::default()
            };
            let cfg = load(&ov)?;
            assert_eq!(cfg.run.id.as_deref(), Some("from-flag"));
            assert_eq!(cfg.defaults.timeout, Dur::secs(1));
            assert_eq!(
                cfg.metrics.interval,
                Some(Dur::secs(2)),
                "env still applies where no flag is given"
            );
            assert_eq!(cfg.scenarios[0].vus, Some(9));
            assert_eq!(cfg.scenarios[0].duration, Some(Dur::secs(30)));
            Ok(())
        });
    }

    #[test]
    fn an_unknown_env_key_is_an_error_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", FILE)?;
            jail.set_env(format!("{PREFIX}RUN__IDD"), "x");
            let e = load_with_env_prefix(
                Some(std::path::Path::new("s.toml")),
                &Overrides::default(),
                PREFIX,
            )
            .expect_err("unknown key")
            .to_string();
            assert!(e.contains("idd"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_file_that_is_missing_or_of_unknown_type_is_named() {
        let e = load(
            Some(std::path::Path::new("/nonexistent/x.toml")),
            &Overrides::default(),
        )
        .expect_err("missing")
        .to_string();
        assert!(e.contains("/nonexistent/x.toml"), "{e}");
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("s.ini");
        std::fs::write(&p, "x=1").expect("write");
        let e = load(Some(&p), &Overrides::default())
            .expect_err("ini")
            .to_string();
        assert!(e.contains("s.ini") && e.contains("unknown format"), "{e}");
    }

    #[test]
    fn an_env_key_typo_names_the_variable_and_suggests_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", FILE)?;
            jail.set_env(format!("{PREFIX}RUN__IDD"), "x");
            let e = load_with_env_prefix(
                Some(std::path::Path::new("s.toml")),
                &Overrides::default(),
                PREFIX,
            )
            .expect_err("unknown key")
            .to_string();
            assert!(
                e.starts_with(&format!(
                    "environment variable {PREFIX}RUN__IDD: unknown key `idd` in `run`; did you mean `id`?"
                )),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn flags_add_thresholds_and_headers_to_the_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "s.toml",
                &format!(
                    "thresholds = [\"p99 < 1s\"]\n[defaults.headers]\nX-File = \"f\"\nX-Both = \"file\"\n{FILE}"
                )
                .replace("[defaults]\n", "[defaults.x]\n")
                .replace("[defaults.x]\n        timeout = \"7s\"", ""),
            )?;
            let ov = Overrides {
                thresholds: vec!["error_rate < 1%".into()],
                headers: vec![("X-Both".into(), "flag".into())],
                ..Default::default()
            };
            let cfg = load_with_env_prefix(Some(std::path::Path::new("s.toml")), &ov, PREFIX)
                .map_err(|e| e.to_string())?;
            assert_eq!(cfg.thresholds, ["p99 < 1s", "error_rate < 1%"]);
            assert_eq!(cfg.defaults.headers["X-File"], "f");
            assert_eq!(cfg.defaults.headers["X-Both"], "flag");
            Ok(())
        });
    }

    #[test]
    fn thresholds_take_a_table_form_and_abort_on_fail_applies_to_the_flags_ones() {
        use crate::config::{ThresholdConfig, ThresholdTable};
        let text = "thresholds = [\"p99 < 1s\", { threshold = \"p99[30s] < 500ms\", abort_on_fail = true, delay = \"30s\" }]\n[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n";
        let ov = Overrides {
            thresholds: vec!["error_rate[1m] < 1%".into()],
            abort_on_fail: true,
            abort_delay: Some(Dur::secs(5)),
            ..Default::default()
        };
        let cfg = load_str("t.toml", text, &ov).unwrap();
        assert_eq!(cfg.thresholds.len(), 3);
        assert_eq!(cfg.thresholds[0], "p99 < 1s");
        assert_eq!(
            cfg.thresholds[1],
            ThresholdConfig::Table(ThresholdTable {
                threshold: "p99[30s] < 500ms".into(),
                abort_on_fail: true,
                delay: Dur::secs(30),
            })
        );
        assert_eq!(cfg.thresholds[2].expr(), "error_rate[1m] < 1%");
        assert_eq!(
            cfg.thresholds[2].abort(),
            (true, std::time::Duration::from_secs(5))
        );
        // Without --abort-on-fail the flag's thresholds stay plain.
        let ov = Overrides {
            thresholds: vec!["p99 < 2s".into()],
            ..Default::default()
        };
        let cfg = load_str("t.toml", text, &ov).unwrap();
        assert_eq!(cfg.thresholds[2], "p99 < 2s");
        // A mistake in the table is named.
        let e = text_err(
            "t.toml",
            "thresholds = [{ threshold = \"p99 < 1s\", abort_on_fial = true }]\n",
        );
        assert!(e.contains("abort_on_fial"), "{e}");
    }

    fn text_err(name: &str, text: &str) -> String {
        load_str(name, text, &Overrides::default())
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn a_misspelt_key_gets_its_line_and_the_closest_key() {
        let toml = "[[scenarios]]\nvus = 1\nduratoin = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n";
        assert_eq!(
            text_err("t.toml", toml),
            "t.toml: line 3: unknown key `duratoin` in `scenarios[0]`; did you mean `duration`? \
             (known keys here: name, executor, vus, duration, iterations, rate, stages, start, \
             base_url, headers, think_time, variables, on_start, tasks, requests)"
        );
        let toml = "[[scenarios]]\nvus = 1\nduration = \"1s\"\n\n[[scenarios.requests]]\nurl = \"http://127.0.0.1:1/\"\nmethd = \"GET\"\n";
        let e = text_err("t.toml", toml);
        assert!(
            e.starts_with("t.toml: line 7: unknown key `methd` in `scenarios[0].requests[0]`; did you mean `method`?"),
            "{e}"
        );
        let toml = "[[scenarios]]\nvus = 1\nduration = \"1s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n[metrics.remote_write]\nurl = \"http://127.0.0.1:1/w\"\npush_intervl = \"1s\"\n";
        let e = text_err("t.toml", toml);
        assert!(
            e.starts_with("t.toml: line 7: unknown key `push_intervl` in `metrics.remote_write`; did you mean `push_interval`?"),
            "{e}"
        );
        let yaml = "run:\n  id: x\nscenarios:\n  - vus: 1\n    duration: 1s\n    requests:\n      - url: http://127.0.0.1:1/\n        nmae: x\n";
        let e = text_err("t.yaml", yaml);
        assert!(
            e.starts_with("t.yaml: line 8: unknown key `nmae` in `scenarios[0].requests[0]`; did you mean `name`?"),
            "{e}"
        );
        assert!(!e.contains("``"), "no nested backticks: {e}");
        let e = text_err("t.toml", "[[scenarios]]\nexecutor = \"constant-vu\"\n");
        assert!(
            e.starts_with("t.toml: line 2: `scenarios[0].executor`: unknown value `constant-vu`; did you mean `constant-vus`?"),
            "{e}"
        );
        let e = text_err("t.toml", "[[scenarios]]\nvus = -5\n");
        assert!(
            e.starts_with("t.toml: line 2: `scenarios[0].vus`: invalid"),
            "{e}"
        );
        assert!(e.contains("-5"), "{e}");
    }

    #[test]
    fn a_string_loads_like_a_file_of_that_name() {
        let cfg = load_str(
            "x.yml",
            "scenarios:\n  - vus: 2\n    duration: 1s\n    requests: [{ url: \"http://127.0.0.1:1/\" }]\n",
            &Overrides::default(),
        )
        .expect("loads");
        assert_eq!(cfg.scenarios[0].vus, Some(2));
        let e = text_err("x.ini", "");
        assert!(e.contains("x.ini") && e.contains("unknown format"), "{e}");
        let e = text_err("bad.toml", "[[scenarios]]\nvus = 1\nduration = \"1s\n");
        assert!(e.contains("bad.toml") && e.contains("line 3"), "{e}");
    }

    fn ad_hoc(ov: Overrides) -> ScenarioConfig {
        let ov = Overrides {
            urls: vec!["http://127.0.0.1:1/".into()],
            ..ov
        };
        let cfg = load(None, &ov).expect("ad hoc");
        cfg.scenarios.into_iter().next().expect("one scenario")
    }

    #[test]
    fn ad_hoc_runs_have_one_set_of_defaults() {
        let sc = ad_hoc(Overrides::default());
        assert_eq!((sc.vus, sc.duration), (Some(10), Some(Dur::secs(10))));
        let sc = ad_hoc(Overrides {
            duration: Some(Dur::secs(30)),
            ..Default::default()
        });
        assert_eq!((sc.vus, sc.duration), (Some(10), Some(Dur::secs(30))));
        let sc = ad_hoc(Overrides {
            iterations: Some(1000),
            ..Default::default()
        });
        assert_eq!((sc.vus, sc.duration), (Some(10), None));
        assert_eq!(sc.executor_kind(), ExecutorKind::SharedIterations);
        let sc = ad_hoc(Overrides {
            vus: Some(3),
            ..Default::default()
        });
        assert_eq!((sc.vus, sc.duration), (Some(3), Some(Dur::secs(10))));
        let sc = ad_hoc(Overrides {
            rate: Some(50.0),
            ..Default::default()
        });
        assert_eq!(sc.executor_kind(), ExecutorKind::ConstantArrivalRate);
        assert_eq!((sc.vus, sc.duration), (None, Some(Dur::secs(10))));
    }

    #[test]
    fn stages_make_a_ramp_of_vus_or_of_rate() {
        let stages = vec![
            super::super::Stage {
                duration: Dur::secs(2),
                target: 5.0,
            },
            super::super::Stage {
                duration: Dur::secs(1),
                target: 0.0,
            },
        ];
        let sc = ad_hoc(Overrides {
            stages: stages.clone(),
            ..Default::default()
        });
        assert_eq!(sc.executor_kind(), ExecutorKind::RampingVus);
        assert_eq!(
            (sc.stages.len(), sc.duration, sc.start, sc.vus),
            (2, None, None, None)
        );
        let sc = ad_hoc(Overrides {
            stages: stages.clone(),
            rate: Some(20.0),
            ..Default::default()
        });
        assert_eq!(sc.executor_kind(), ExecutorKind::RampingArrivalRate);
        assert_eq!((sc.start, sc.rate, sc.duration), (Some(20.0), None, None));
        // On a file's open-model scenario the stages are rates, starting from its rate.
        let cfg = load_str(
            "o.toml",
            "[[scenarios]]\nrate = 7\nduration = \"5s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &Overrides {
                stages,
                ..Default::default()
            },
        )
        .expect("loads");
        let sc = &cfg.scenarios[0];
        assert_eq!(sc.executor_kind(), ExecutorKind::RampingArrivalRate);
        assert_eq!((sc.start, sc.duration, sc.rate), (Some(7.0), None, None));
        // A file's closed scenario becomes a VU ramp; the keys it would ignore go.
        let cfg = load_str(
            "c.toml",
            "[[scenarios]]\nexecutor = \"constant-vus\"\nvus = 3\niterations = 9\nduration = \"5s\"\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &Overrides {
                stages: vec![super::super::Stage {
                    duration: Dur::secs(1),
                    target: 2.0,
                }],
                ..Default::default()
            },
        )
        .expect("loads");
        let sc = &cfg.scenarios[0];
        assert_eq!(sc.executor_kind(), ExecutorKind::RampingVus);
        assert_eq!((sc.vus, sc.iterations, sc.duration), (None, None, None));
        // --rate turns a VU ramp into a constant rate.
        let cfg = load_str(
            "r.toml",
            "[[scenarios]]\nexecutor = \"ramping-vus\"\nstart = 1\nstages = [{ duration = \"1s\", target = 2 }]\nrequests = [{ url = \"http://127.0.0.1:1/\" }]\n",
            &Overrides {
                rate: Some(5.0),
                duration: Some(Dur::secs(1)),
                ..Default::default()
            },
        )
        .expect("loads");
        let sc = &cfg.scenarios[0];
        assert_eq!(sc.executor_kind(), ExecutorKind::ConstantArrivalRate);
        assert_eq!((sc.rate, sc.start, sc.stages.len()), (Some(5.0), None, 0));
    }

    #[test]
    fn url_with_a_file_replaces_the_base_and_every_absolute_origin() {
        let cfg = load_str(
            "a.toml",
            r#"
            [[scenarios]]
            vus = 1
            duration = "1s"
            base_url = "http://old:1"
            on_start = [{ url = "https://auth.example:8443/login?x=1" }]
            requests = [{ url = "HTTP://user:pw@old:2" }, { url = "/rel" }, { url = "http://${env.HOST}/p#f" }]
            "#,
            &Overrides {
                urls: vec!["http://127.0.0.1:9/base".into()],
                ..Default::default()
            },
        )
        .expect("loads");
        let sc = &cfg.scenarios[0];
        assert_eq!(sc.base_url, None);
        assert_eq!(
            cfg.defaults.base_url.as_deref(),
            Some("http://127.0.0.1:9/base")
        );
        assert_eq!(sc.on_start[0].url, "http://127.0.0.1:9/login?x=1");
        let urls: Vec<&str> = sc.requests.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            ["http://127.0.0.1:9", "/rel", "http://127.0.0.1:9/p#f"]
        );
    }
}
