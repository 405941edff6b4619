#!/usr/bin/env node
// Offline consistency checks for compose.yaml, the Grafana provisioning files, the
// Prometheus config and the dashboard JSON:
//  - every host file/dir that compose.yaml bind-mounts exists in the repo;
//  - every container path that a service references (command flags, provisioning paths,
//    the home dashboard) is covered by one of its mounts and exists on the host side;
//  - ports are published on 127.0.0.1 only; images carry an explicit tag;
//  - the provisioned data source uid is the one the dashboard expects;
//  - the dashboard JSON uses only `${datasource}` data source refs, stable ids, fixed uid.
// Last line: "N passed, M failed"; exit 1 on any failure.
import { readFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve, posix } from 'node:path';
import { parse } from 'yaml';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
let passed = 0, failed = 0;
const ok = (m) => { passed++; console.log(`ok    ${m}`); };
const bad = (m) => { failed++; console.log(`FAIL  ${m}`); };
const check = (cond, m) => (cond ? ok(m) : bad(m));
const rel = (p) => p.replace(`${REPO}/`, '');
const load = (p) => parse(readFileSync(join(REPO, p), 'utf8'));

const compose = load('compose.yaml');
check(compose?.services && typeof compose.services === 'object', 'compose.yaml has services');

// ---------------------------------------------------------------- mounts
const mounts = {}; // service -> [{host, container}]
for (const [name, svc] of Object.entries(compose.services ?? {})) {
  mounts[name] = [];
  check(typeof svc.image === 'string' && /:[^/]+$/.test(svc.image) && !svc.image.endsWith(':latest'), `${name}: image has a pinned tag (${svc.image})`);
  if (svc.build !== undefined) {
    const ctx = typeof svc.build === 'string' ? svc.build : svc.build.context ?? '.';
    const file = typeof svc.build === 'object' && svc.build.dockerfile ? svc.build.dockerfile : 'Dockerfile';
    check(existsSync(resolve(REPO, ctx, file)), `${name}: build ${ctx}/${file} exists`);
  }
  for (const v of svc.volumes ?? []) {
    let source, target;
    if (typeof v === 'string') [source, target] = v.split(':');
    else if (v.type === 'bind' || v.type === undefined) ({ source, target } = v);
    if (!source || !target) continue;
    if (!/^[./]/.test(source)) continue; // named volume
    const host = resolve(REPO, source);
    mounts[name].push({ host, container: target });
    check(existsSync(host), `${name}: mounted ${source} exists`);
  }
  for (const f of [svc.env_file ?? []].flat()) check(existsSync(resolve(REPO, typeof f === 'string' ? f : f.path)), `${name}: env_file ${f} exists`);
  for (const p of svc.ports ?? []) {
    const s = typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published}:${p.target}`;
    check(s.startsWith('127.0.0.1:'), `${name}: port ${s} published on 127.0.0.1 only`);
  }
}

// Container path -> host path through the service's bind mounts (longest prefix wins).
function toHost(service, containerPath) {
  let best;
  for (const m of mounts[service] ?? []) {
    if (containerPath === m.container || containerPath.startsWith(`${m.container}/`)) {
      if (!best || m.container.length > best.container.length) best = m;
    }
  }
  return best && join(best.host, posix.relative(best.container, containerPath));
}
function checkContainerPath(service, containerPath, what, kind) {
  const host = toHost(service, containerPath);
  if (!host) return bad(`${service}: ${what} ${containerPath} is not inside any bind mount`);
  const exists = existsSync(host) && (kind === 'dir' ? statSync(host).isDirectory() : statSync(host).isFile());
  check(exists, `${service}: ${what} ${containerPath} -> ${rel(host)} exists`);
  return exists ? host : undefined;
}

// Config files named on command lines.
for (const [name, svc] of Object.entries(compose.services ?? {})) {
  const cmd = [svc.command ?? [], svc.entrypoint ?? []].flat().flatMap((c) => String(c).split(/\s+/));
  for (const c of cmd) {
    const m = /^--(config\.file|config|web\.config\.file)=(\/.+)$/.exec(c);
    if (m) checkContainerPath(name, m[2], `--${m[1]}`, 'file');
  }
}

// ---------------------------------------------------------------- grafana
const graf = compose.services?.grafana;
check(!!graf, 'compose.yaml has a grafana service');
const env = Array.isArray(graf?.environment)
  ? Object.fromEntries(graf.environment.map((e) => e.split(/=(.*)/s).slice(0, 2)))
  : graf?.environment ?? {};
const provDir = checkContainerPath('grafana', '/etc/grafana/provisioning', 'provisioning dir', 'dir');
if (env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH) checkContainerPath('grafana', env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, 'home dashboard', 'file');
else bad('grafana: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH is not set');
check(env.GF_AUTH_ANONYMOUS_ENABLED === 'true' && env.GF_AUTH_ANONYMOUS_ORG_ROLE === 'Viewer', 'grafana: anonymous Viewer access');

// Environment variables used by provisioning files must be set by compose.
const usedVars = (text) => [...text.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g)].map((m) => m[1]);
let dsUids = [];
if (provDir) {
  for (const sub of ['datasources', 'dashboards']) {
    const dir = join(provDir, sub);
    if (!existsSync(dir)) { bad(`provisioning/${sub} missing`); continue; }
    for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f))) {
      const path = join(dir, f);
      const text = readFileSync(path, 'utf8');
      let doc;
      try { doc = parse(text); ok(`${rel(path)} parses`); } catch (e) { bad(`${rel(path)}: ${e.message}`); continue; }
      for (const v of usedVars(text.replace(/^\s*#.*$/gm, ''))) check(v in env, `${rel(path)}: $${v} is set in compose grafana.environment`);
      if (sub === 'datasources') {
        for (const ds of doc.datasources ?? []) {
          dsUids.push(ds.uid);
          check(ds.type === 'prometheus' && typeof ds.url === 'string', `${rel(path)}: data source ${ds.uid} is prometheus with a url`);
        }
      } else {
        for (const p of doc.providers ?? []) {
          check(p.type === 'file', `${rel(path)}: provider ${p.name} is a file provider`);
          const host = checkContainerPath('grafana', p.options?.path ?? '', `dashboard provider ${p.name} path`, 'dir');
          if (host) check(readdirSync(host).some((f) => f.endsWith('.json')), `provider ${p.name}: ${rel(host)} has dashboard JSON`);
        }
      }
    }
  }
}
check(dsUids.includes('stampede-prometheus'), 'provisioned data source uid stampede-prometheus');

// ---------------------------------------------------------------- dashboard JSON
const dashPath = join(REPO, 'grafana/dashboards/stampede.json');
const dash = JSON.parse(readFileSync(dashPath, 'utf8'));
check(dash.uid === 'stampede' && !('id' in dash) && !('version' in dash), 'dashboard: uid "stampede", no id, no version');
const panels = (dash.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
const ids = panels.map((p) => p.id);
check(ids.every((i) => Number.isInteger(i)) && new Set(ids).size === ids.length, `dashboard: ${ids.length} panels with unique integer ids`);
const refs = [];
JSON.stringify(dash, (k, v) => { if (k === 'datasource' && v && typeof v === 'object') refs.push(v); return v; });
const badRefs = refs.filter((r) => !(r.type === 'grafana' || (r.type === 'prometheus' && r.uid === '${datasource}')));
check(badRefs.length === 0, `dashboard: all ${refs.length} data source refs are \${datasource} (or built-in)`);
const dsVar = dash.templating?.list?.find((v) => v.type === 'datasource');
check(dsVar?.query === 'prometheus', 'dashboard: datasource variable of type prometheus');

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
