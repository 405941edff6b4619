#!/usr/bin/env node
// Runs every query of grafana/dashboards/stampede.json against a live Prometheus for one
// stampede run, with the dashboard variables substituted the way Grafana would.
//
//   node grafana/tests/check-queries.mjs --prom http://127.0.0.1:9090 --run RUN_ID
//        [--native] [--expect-requests N] [--expect-rps R] [--expect-duration S]
//        [--expect-instances N] [--expect-p99 LO:HI] [--scenario REGEX] [--quantile 0.99]
//        [--window '$__rate_interval'] [--scrape-interval 10s] [--margin 30s]
//        [--lookback 6h] [--dashboard path/to/dashboard.json] [--verbose]
//
// Exit 0 when every query succeeds and every panel that must have data for this run has
// data; exit 1 otherwise (or 2 on usage errors). Last line: "N passed, M failed".
// Node 20+, no dependencies (global fetch).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

// Targets that may legitimately return nothing. Key: panel id, value: refId -> reason.
// 'classic' = required only without --native; 'native' = required only with --native;
// anything else = never required (reported, not failed). Unlisted targets are required.
const EXPECT = {
  12: { A: 'classic', B: 'classic', C: 'classic', D: 'classic' }, // classic-histogram latency
  13: { A: 'native', B: 'native', C: 'native', D: 'native' }, // native-histogram latency
  14: { A: 'classic', B: 'native' },
  21: { A: 'optional: a run without failed requests has no error_type series' },
  23: { A: 'optional: a scenario without checks has no stampede_checks_total' },
  32: {
    B: 'optional: dropped iterations only exist for arrival-rate executors',
    C: 'optional: the intended rate (stampede_target_rate) only exists for arrival-rate executors',
  },
  34: { B: 'optional: requests without bodies may record no request body sizes' },
};

// ------------------------------------------------------------------ args
const args = { scenario: '.*', name: '.*', quantile: '0.99', window: '$__rate_interval', 'scrape-interval': '10s', margin: '30s', lookback: '6h' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
  const k = a.slice(2);
  if (k === 'native' || k === 'verbose') args[k] = true;
  else if (i + 1 < argv.length) args[k] = argv[++i];
  else usage(`missing value for ${a}`);
}
function usage(msg) {
  console.error(`${msg}\nusage: node check-queries.mjs --prom URL --run RUN_ID [--native] [--expect-requests N] [--expect-rps R] [--expect-duration S] [--expect-instances N] [--expect-p99 LO:HI] [--scenario REGEX] [--quantile Q] [--window W] [--scrape-interval 10s] [--margin 30s] [--lookback 6h] [--dashboard FILE] [--verbose]`);
  process.exit(2);
}
if (!args.prom || !args.run) usage('--prom and --run are required');
const PROM = args.prom.replace(/\/+$/, '');
const dashPath = args.dashboard ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboards', 'stampede.json');
const dashboard = JSON.parse(readFileSync(dashPath, 'utf8'));

const dur = (s) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s);
  if (!m) usage(`bad duration ${s}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
};

// ------------------------------------------------------------------ Prometheus client
async function prom(path, params, method = 'POST') {
  const body = new URLSearchParams(params);
  let res;
  try {
    res = method === 'GET'
      ? await fetch(`${PROM}${path}?${body}`)
      : await fetch(`${PROM}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
  } catch (e) {
    return { error: `request failed: ${e.cause?.message ?? e.message}` };
  }
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { return { error: `HTTP ${res.status}: ${text.slice(0, 300)}` }; }
  if (json.status !== 'success') return { error: `${json.errorType ?? 'error'}: ${json.error ?? text.slice(0, 300)}` };
  if (json.warnings?.length && args.verbose) console.log(`  warnings: ${json.warnings.join('; ')}`);
  return { data: json.data };
}

// ------------------------------------------------------------------ the run's time span
const RUN_ESC = args.run.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&'); // Grafana's Prometheus regex escaping
const runSel = `{__name__=~"http_client_request_duration_seconds(_count)?", stampede_run_id="${args.run}"}`;
const nowS = Date.now() / 1000;
const raw = await prom('/api/v1/query', { query: `${runSel}[${args.lookback}]`, time: String(nowS) });
if (raw.error) { console.error(`cannot read run ${args.run}: ${raw.error}`); process.exit(1); }
let first = Infinity, last = -Infinity, scenarios = new Set();
for (const s of raw.data.result) {
  scenarios.add(s.metric.stampede_scenario);
  for (const [t] of [...(s.values ?? []), ...(s.histograms ?? [])]) { first = Math.min(first, t); last = Math.max(last, t); }
}
if (!Number.isFinite(first)) {
  console.error(`run ${args.run}: no http_client_request_duration_seconds samples in the last ${args.lookback} (try --lookback)`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const margin = dur(args.margin);
const from = Math.floor(first - margin);
const to = Math.ceil(last + margin);
const rangeS = to - from;
const scrape = dur(args['scrape-interval']);
console.log(`run ${args.run}: scenarios [${[...scenarios].join(', ')}], samples ${new Date(first * 1000).toISOString()} .. ${new Date(last * 1000).toISOString()}; range ${rangeS}s${args.native ? ', native histograms' : ''}`);

// Grafana: $__interval = max(min interval, range / max data points), $__rate_interval =
// max($__interval + scrape interval, 4 * scrape interval).
function intervalFor(panel) {
  const min = panel.interval ? dur(panel.interval) : scrape;
  return Math.max(1, Math.ceil(Math.max(min, rangeS / (panel.maxDataPoints ?? 1000))));
}

const KNOWN = new Set(['run', 'scenario', 'name', 'quantile', 'window', 'datasource', '__range', '__range_s', '__range_ms', '__interval', '__interval_ms', '__rate_interval']);
function interpolate(expr, panel) {
  const interval = intervalFor(panel);
  const vars = {
    run: RUN_ESC,
    scenario: args.scenario,
    name: args.name,
    quantile: args.quantile,
    window: args.window,
    datasource: 'stampede-prometheus',
    __range: `${rangeS}s`,
    __range_s: String(rangeS),
    __range_ms: String(rangeS * 1000),
    __interval: `${interval}s`,
    __interval_ms: String(interval * 1000),
    __rate_interval: `${Math.max(interval + scrape, 4 * scrape)}s`,
  };
  const unknown = [];
  // Two passes: a variable's value may itself be a built-in ($window -> $__rate_interval).
  let out = expr;
  for (let pass = 0; pass < 2; pass++) {
    out = out.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (m, a, b, c) => {
      const v = a ?? b ?? c;
      if (!KNOWN.has(v)) { unknown.push(v); return m; }
      return vars[v];
    });
  }
  return { expr: out, interval, unknown };
}

// ------------------------------------------------------------------ checks
let passed = 0, failed = 0;
const empties = [];
const pass = (msg) => { passed++; console.log(`ok    ${msg}`); };
const fail = (msg, detail) => { failed++; console.log(`FAIL  ${msg}${detail ? `\n      ${detail.replace(/\n/g, '\n      ')}` : ''}`); };

const required = (panelId, refId) => {
  const e = EXPECT[panelId]?.[refId];
  if (e === undefined) return true;
  if (e === 'classic') return !args.native;
  if (e === 'native') return !!args.native;
  return false;
};
const hasData = (data) => {
  if (!data) return false;
  if (data.resultType === 'scalar') return true;
  return data.result.some((s) => (s.value || s.histogram || s.values?.length || s.histograms?.length));
};

// Every query must be scoped to the run and scenario.
function lintScope(what, expr) {
  const problems = [];
  if (!/stampede_run_id=~"\$run"/.test(expr)) problems.push('missing stampede_run_id=~"$run"');
  // The generator's process_* series have no scenario: a query of those alone needs only the run.
  const processOnly = /\bprocess_\w+\{stampede_run_id=~"\$run"\}/.test(expr) && !/http_client|stampede_(vus|iteration|checks|dropped|run_duration)/.test(expr);
  if (!processOnly && !/stampede_scenario=~"\$scenario"/.test(expr) && !/^label_values\(.*stampede_scenario\)$/.test(expr) && !/stampede_run_id!=""/.test(expr)) problems.push('missing stampede_scenario=~"$scenario"');
  return problems;
}

// Variables (label_values queries).
for (const v of dashboard.templating?.list ?? []) {
  if (v.type !== 'query') continue;
  const q = typeof v.query === 'string' ? v.query : v.query?.query ?? v.definition;
  const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
  if (!m) { fail(`variable $${v.name}: unsupported query`, q); continue; }
  const { expr: match } = interpolate(m[1], {});
  const r = await prom(`/api/v1/label/${m[2]}/values`, { 'match[]': match, start: String(from), end: String(to) }, 'GET');
  if (r.error) fail(`variable $${v.name}`, `${q}\n${r.error}`);
  else if (!r.data.length) fail(`variable $${v.name}: no values`, q);
  else if (v.name === 'run' && !r.data.includes(args.run)) fail(`variable $run does not offer ${args.run}`, r.data.join(', '));
  else {
    if (v.name === 'run' && v.sort === 2) {
      const all = [...r.data].sort().reverse();
      if (args.verbose) console.log(`      runs newest first: ${all.slice(0, 5).join(', ')}`);
    }
    pass(`variable $${v.name}: ${r.data.length} value(s)${v.name !== 'run' ? ` [${r.data.slice(0, 6).join(', ')}]` : ''}`);
  }
}

// Annotations (range queries over the run).
for (const a of dashboard.annotations?.list ?? []) {
  if (!a.expr) continue;
  const { expr, interval, unknown } = interpolate(a.expr, {});
  if (unknown.length) { fail(`annotation ${a.name}: unknown variables ${unknown.join(', ')}`, a.expr); continue; }
  const r = await prom('/api/v1/query_range', { query: expr, start: String(from), end: String(to), step: String(interval) });
  if (r.error) fail(`annotation ${a.name}`, `${expr}\n${r.error}`);
  else if (!hasData(r.data)) fail(`annotation ${a.name}: no data`, expr);
  else pass(`annotation ${a.name}`);
}

// Panels.
const flat = (dashboard.panels ?? []).flatMap((p) => (p.type === 'row' ? p.panels ?? [] : [p]));
let totalRequests;
let avgRps;
let runDuration;
let p99;
let generators;
const seriesCount = {}; // panel id -> distinct series of its first target (range queries)
for (const panel of flat) {
  const label = `[${panel.id}] ${panel.title}`;
  if (!panel.targets?.length) { fail(`${label}: no targets`); continue; }
  const instant = panel.type === 'stat' || panel.type === 'table' || panel.type === 'gauge' || panel.type === 'bargauge';
  const problems = [], missing = [], optionalEmpty = [];
  let withData = 0;
  for (const t of panel.targets) {
    const lint = lintScope(`${label} ${t.refId}`, t.expr);
    const { expr, interval, unknown } = interpolate(t.expr, panel);
    if (unknown.length) lint.push(`unknown variables ${unknown.join(', ')}`);
    if (lint.length) { problems.push(`${t.refId}: ${lint.join('; ')}\n  ${t.expr}`); continue; }
    const isInstant = t.instant === true || (instant && t.range !== true);
    const r = isInstant
      ? await prom('/api/v1/query', { query: expr, time: String(to) })
      : await prom('/api/v1/query_range', { query: expr, start: String(from), end: String(to), step: String(interval) });
    if (r.error) { problems.push(`${t.refId}: ${r.error}\n  ${expr}`); continue; }
    if (args.verbose) console.log(`      ${t.refId} ${isInstant ? 'instant' : 'range'} ${expr}\n        -> ${JSON.stringify(r.data.result).slice(0, 300)}`);
    if (hasData(r.data)) withData++;
    else if (required(panel.id, t.refId)) missing.push(`${t.refId}: ${expr}`);
    else optionalEmpty.push(t.refId);
    if (panel.id === 2 && t.refId === 'A' && hasData(r.data)) totalRequests = Number(r.data.result[0].value[1]);
    if (panel.id === 3 && t.refId === 'A' && hasData(r.data)) avgRps = Number(r.data.result[0].value[1]);
    if (panel.id === 8 && t.refId === 'A' && hasData(r.data)) runDuration = Number(r.data.result[0].value[1]);
    if (panel.id === 6 && t.refId === 'A' && hasData(r.data)) p99 = Number(r.data.result[0].value[1]);
    if (panel.id === 44 && t.refId === 'A' && hasData(r.data)) generators = Number(r.data.result[0].value[1]);
    if (t.refId === 'A' && !isInstant && hasData(r.data)) seriesCount[panel.id] = r.data.result.filter((x) => x.values?.length || x.histograms?.length).length;
    // Every overview stat is one number for the whole run, never one per generator.
    if (isInstant && panel.type === 'stat' && hasData(r.data) && r.data.result.length !== 1) problems.push(`${t.refId}: ${r.data.result.length} series, expected 1 (not summed over instances?)\n  ${expr}`);
  }
  if (optionalEmpty.length) empties.push(`${label} (${optionalEmpty.join(',')})`);
  if (problems.length) fail(`${label}: query error`, problems.join('\n'));
  else if (missing.length) fail(`${label}: no data`, missing.join('\n'));
  else pass(`${label}${withData ? '' : ' (no data, allowed)'}${optionalEmpty.length && withData ? ` (empty, allowed: ${optionalEmpty.join(',')})` : ''}`);
}

if (args['expect-requests'] !== undefined) {
  const want = Number(args['expect-requests']);
  if (totalRequests === undefined) fail(`Total requests: no value (expected ${want})`);
  else if (Math.round(totalRequests) !== want) fail(`Total requests = ${totalRequests} (rounded ${Math.round(totalRequests)}), expected ${want}`);
  else pass(`Total requests = ${want}`);
}
// Numeric spot checks against the run's own summary (relative tolerance 1%).
for (const [flag, name, got] of [['expect-rps', 'Avg req/s', avgRps], ['expect-duration', 'Duration', runDuration]]) {
  if (args[flag] === undefined) continue;
  const want = Number(args[flag]);
  if (got === undefined) fail(`${name}: no value (expected ${want})`);
  else if (Math.abs(got - want) > 0.01 * Math.abs(want)) fail(`${name} = ${got}, expected ${want} (±1%)`);
  else pass(`${name} = ${got} (expected ${want})`);
}
// Several generators of one run: one series per instance in the Generators row, and the count.
if (args['expect-instances'] !== undefined) {
  const want = Number(args['expect-instances']);
  if (generators !== want) fail(`[44] Generators = ${generators}, expected ${want}`);
  else pass(`[44] Generators = ${want}`);
  for (const id of [41, 42, 43]) {
    if (seriesCount[id] !== want) fail(`[${id}] ${seriesCount[id] ?? 0} series, expected one per generator (${want})`);
    else pass(`[${id}] one series per generator (${want})`);
  }
}
// p99 of the whole run within bounds (e.g. the bucket-widened range of the instances' own p99s:
// the union's quantile lies between the smallest and the largest of theirs).
if (args['expect-p99'] !== undefined) {
  const [lo, hi] = args['expect-p99'].split(':').map(Number);
  if (p99 === undefined) fail(`p99 latency: no value (expected ${lo}..${hi})`);
  else if (!(p99 >= lo && p99 <= hi)) fail(`p99 latency = ${p99}, expected within ${lo}..${hi}`);
  else pass(`p99 latency = ${p99} (within ${lo}..${hi})`);
}
if (empties.length) console.log(`panels with allowed empty targets: ${empties.join('; ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
