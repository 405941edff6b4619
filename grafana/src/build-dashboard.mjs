#!/usr/bin/env node
// Generates grafana/dashboards/stampede.json (the file Grafana loads).
//
//   node grafana/src/build-dashboard.mjs          # (re)write the JSON
//   node grafana/src/build-dashboard.mjs --check  # exit 1 if the checked-in JSON differs
//
// Only the series in the stampede metric contract are used. Every query works for
// classic histograms (`_bucket`/`_count`/`_sum`) and, where a histogram is involved,
// also for native histograms (`X or <native form of X>`), except the two panels that
// are explicitly "classic" / "native". Queries only use PromQL that Prometheus 2.42+
// can evaluate (no histogram subtraction, no last_over_time over native histograms).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'dashboards', 'stampede.json');

// ---------------------------------------------------------------- PromQL helpers
const RUN = 'stampede_run_id=~"$run", stampede_scenario=~"$scenario"';
const RUN_NAME = `${RUN}, url_template=~"$name"`;
// The generator's own process.* series carry the run id but no scenario.
const RUN_ONLY = 'stampede_run_id=~"$run"';
const DUR = 'http_client_request_duration_seconds';
// Matches the classic `_count` series or the native histogram series of the request duration.
const ANY_DUR = (sel) => `{__name__=~"${DUR}(_count)?", ${sel}}`;
const sel = (metric, s, extra) => `${metric}{${s}${extra ? `, ${extra}` : ''}}`;
const sum = (by) => (by ? `sum by (${by}) ` : 'sum');

// Exact increase of a cumulative counter over the dashboard range:
// last value in the range minus the value at the range start (0 if the series started inside it).
const deltaClassic = (series, by) => {
  const last = `${sum(by)}(last_over_time(${series}[$__range]))`;
  return `(${last} - ${sum(by)}(${series} offset $__range) or ${last})`;
};
// Same for the observation count of a native histogram (subquery: PromQL 2.x has no
// last_over_time over histogram samples; the last step always sees the last sample).
const deltaNativeCount = (series, by) => {
  const last = `${sum(by)}(last_over_time(histogram_count(${series})[$__range:$__interval]))`;
  return `(${last} - ${sum(by)}(histogram_count(${series} offset $__range)) or ${last})`;
};
// Requests (histogram observations) in the range, classic or native.
const requests = (s, by, extra) =>
  `${deltaClassic(sel(`${DUR}_count`, s, extra), by)} or ${deltaNativeCount(sel(DUR, s, extra), by)}`;
const failures = (s, by) => requests(s, by, 'error_type!=""');
// Observations per second over a rate window, classic or native.
const ratePerSec = (base, s, by, extra) =>
  `${sum(by)}(rate(${sel(`${base}_count`, s, extra)}[$window])) or ${sum(by)}(histogram_count(rate(${sel(base, s, extra)}[$window])))`;
// Quantile over the whole range (classic: exact bucket deltas; native: increase()).
const rangeQuantile = (q, s, by) =>
  `histogram_quantile(${q}, ${deltaClassic(sel(`${DUR}_bucket`, s), by ? `${by}, le` : 'le')}) or ` +
  `histogram_quantile(${q}, ${sum(by)}(increase(${sel(DUR, s)}[$__range])))`;
// The run's duration inside the range, from stampede_run_duration_seconds (a gauge of the time
// since the run started whose last value is the summary's duration_s): its last value in the
// range minus its value at the range start (0 when the run started inside the range).
const runSeconds = (s) => {
  const last = `max(max_over_time(${sel('stampede_run_duration_seconds', s)}[$__range]))`;
  return `(${last} - max(${sel('stampede_run_duration_seconds', s)} offset $__range) or ${last})`;
};

// ---------------------------------------------------------------- panel helpers
const DS = { type: 'prometheus', uid: '${datasource}' };
const refIds = 'ABCDEFGHIJ';
const target = (i, expr, extra = {}) => ({ datasource: DS, editorMode: 'code', expr, refId: refIds[i], ...extra });
const instant = (i, expr, extra = {}) => target(i, expr, { instant: true, range: false, ...extra });
// Classic-bucket queries ask for exemplars (trace ids of the slowest sampled requests).
const ranged = (i, expr, legendFormat) =>
  target(i, expr, { legendFormat, range: true, instant: false, ...(expr.includes(`${DUR}_bucket`) ? { exemplar: true } : {}) });

const row = (id, title, y) => ({ collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, id, panels: [], title, type: 'row' });

function stat(id, title, description, gridPos, unit, exprs, extra = {}) {
  return {
    datasource: DS,
    description,
    fieldConfig: {
      defaults: {
        color: { mode: 'thresholds' },
        decimals: extra.decimals,
        mappings: [],
        thresholds: extra.thresholds ?? { mode: 'absolute', steps: [{ color: 'blue', value: null }] },
        unit,
      },
      overrides: [],
    },
    gridPos,
    id,
    ...(extra.interval ? { interval: extra.interval, maxDataPoints: 5000 } : {}),
    options: {
      colorMode: 'value',
      graphMode: 'none',
      justifyMode: 'auto',
      orientation: 'auto',
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      showPercentChange: false,
      textMode: 'value',
      wideLayout: true,
    },
    targets: exprs.map((e, i) => instant(i, e)),
    title,
    type: 'stat',
  };
}

function timeseries(id, title, description, gridPos, unit, targets, extra = {}) {
  return {
    datasource: DS,
    description,
    fieldConfig: {
      defaults: {
        color: { mode: 'palette-classic' },
        custom: {
          drawStyle: 'line',
          fillOpacity: extra.fillOpacity ?? 10,
          lineWidth: 1,
          showPoints: 'never',
          spanNulls: false,
          stacking: { group: 'A', mode: 'none' },
        },
        mappings: [],
        min: 0,
        unit,
      },
      overrides: extra.overrides ?? [],
    },
    gridPos,
    id,
    options: {
      legend: { calcs: ['mean', 'max'], displayMode: 'table', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    targets: targets.map(([expr, legend], i) => ranged(i, expr, legend)),
    title,
    type: 'timeseries',
  };
}

// ---------------------------------------------------------------- panels
const pct = `100 * (${failures(RUN, '')} or 0 * (${requests(RUN, '')})) / (${requests(RUN, '')})`;
const panels = [
  row(1, 'Overview (selected run, whole time range)', 0),
  stat(2, 'Total requests', 'HTTP requests completed in the time range (exact counter delta).', { h: 4, w: 3, x: 0, y: 1 }, 'short', [requests(RUN, '')], { decimals: 0 }),
  stat(3, 'Avg req/s', 'Requests divided by the part of the run inside the time range (stampede_run_duration_seconds); for a whole run this is the summary\'s rps.', { h: 4, w: 3, x: 3, y: 1 }, 'reqps',
    [`(${requests(RUN, '')}) / ${runSeconds(RUN)}`], { decimals: 1 }),
  stat(4, 'Error %', 'Requests with an error.type (timeouts, connection errors, HTTP errors) as % of all requests.', { h: 4, w: 3, x: 6, y: 1 }, 'percent', [pct], {
    decimals: 2,
    thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }, { color: 'red', value: 5 }] },
  }),
  stat(5, 'p95 latency', 'Request duration 95th percentile over the time range.', { h: 4, w: 4, x: 9, y: 1 }, 's', [rangeQuantile(0.95, RUN, '')]),
  stat(6, 'p99 latency', 'Request duration 99th percentile over the time range.', { h: 4, w: 4, x: 13, y: 1 }, 's', [rangeQuantile(0.99, RUN, '')]),
  stat(7, 'Peak VUs', 'Highest number of running VUs at one instant in the time range, summed over generators and scenarios at each step (not the sum of each one\'s own peak).', { h: 4, w: 3, x: 17, y: 1 }, 'short', [`max_over_time(sum(${sel('stampede_vus', RUN)})[$__range:$__interval])`], { decimals: 0 }),
  stat(8, 'Duration', 'How much of the run lies inside the time range (stampede_run_duration_seconds); for a whole run this is the summary\'s duration_s.', { h: 4, w: 4, x: 20, y: 1 }, 's', [runSeconds(RUN)], { decimals: 1 }),
  {
    datasource: DS,
    description: 'Per request name over the whole time range (Locust-style statistics). Failures = requests with an error.type.',
    fieldConfig: {
      defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false }, mappings: [], thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] } },
      overrides: [
        ...['Requests', 'Failures'].map((n) => ({ matcher: { id: 'byName', options: n }, properties: [{ id: 'unit', value: 'short' }, { id: 'decimals', value: 0 }] })),
        { matcher: { id: 'byName', options: 'Error %' }, properties: [{ id: 'unit', value: 'percent' }, { id: 'decimals', value: 2 }] },
        { matcher: { id: 'byName', options: 'Req/s' }, properties: [{ id: 'unit', value: 'reqps' }, { id: 'decimals', value: 2 }] },
        ...['Avg', 'p50', 'p95', 'p99'].map((n) => ({ matcher: { id: 'byName', options: n }, properties: [{ id: 'unit', value: 's' }] })),
      ],
    },
    gridPos: { h: 8, w: 24, x: 0, y: 5 },
    id: 9,
    interval: '1s',
    maxDataPoints: 5000,
    options: { cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' }, showHeader: true, sortBy: [{ desc: true, displayName: 'Requests' }] },
    targets: [
      requests(RUN_NAME, 'url_template'),
      `${failures(RUN_NAME, 'url_template')} or 0 * (${requests(RUN_NAME, 'url_template')})`,
      `100 * (${failures(RUN_NAME, 'url_template')} or 0 * (${requests(RUN_NAME, 'url_template')})) / (${requests(RUN_NAME, 'url_template')})`,
      `(${requests(RUN_NAME, 'url_template')}) / scalar(${runSeconds(RUN)})`,
      `${deltaClassic(sel(`${DUR}_sum`, RUN_NAME), 'url_template')} / (${deltaClassic(sel(`${DUR}_count`, RUN_NAME), 'url_template')}) or ` +
        `sum by (url_template) (histogram_sum(increase(${sel(DUR, RUN_NAME)}[$__range]))) / sum by (url_template) (histogram_count(increase(${sel(DUR, RUN_NAME)}[$__range])))`,
      rangeQuantile(0.5, RUN_NAME, 'url_template'),
      rangeQuantile(0.95, RUN_NAME, 'url_template'),
      rangeQuantile(0.99, RUN_NAME, 'url_template'),
    ].map((e, i) => instant(i, e, { format: 'table' })),
    title: 'Per-request statistics',
    transformations: [
      { id: 'merge', options: {} },
      {
        id: 'organize',
        options: {
          excludeByName: { Time: true },
          indexByName: { url_template: 0, 'Value #A': 1, 'Value #B': 2, 'Value #C': 3, 'Value #D': 4, 'Value #E': 5, 'Value #F': 6, 'Value #G': 7, 'Value #H': 8 },
          renameByName: {
            url_template: 'Request name', 'Value #A': 'Requests', 'Value #B': 'Failures', 'Value #C': 'Error %', 'Value #D': 'Req/s',
            'Value #E': 'Avg', 'Value #F': 'p50', 'Value #G': 'p95', 'Value #H': 'p99',
          },
        },
      },
    ],
    type: 'table',
  },

  row(10, 'Throughput and latency', 13),
  timeseries(11, 'Requests/s by request name', 'Completed requests per second ($window rate window).', { h: 8, w: 12, x: 0, y: 14 }, 'reqps', [
    [ratePerSec(DUR, RUN_NAME, 'url_template'), '{{url_template}}'],
    [ratePerSec(DUR, RUN_NAME, ''), 'total'],
  ]),
  timeseries(14, 'Latency p$quantile by request name', 'Request duration quantile chosen with the quantile variable (classic histograms; native when enabled).', { h: 8, w: 12, x: 12, y: 14 }, 's', [
    [`histogram_quantile($quantile, sum by (url_template, le) (rate(${sel(`${DUR}_bucket`, RUN_NAME)}[$window])))`, '{{url_template}}'],
    [`histogram_quantile($quantile, sum by (url_template) (rate(${sel(DUR, RUN_NAME)}[$window])))`, '{{url_template}} (native)'],
  ]),
  timeseries(12, 'Latency percentiles (classic histogram)', 'From http_client_request_duration_seconds_bucket.', { h: 8, w: 12, x: 0, y: 22 }, 's',
    [0.5, 0.9, 0.95, 0.99].map((q) => [`histogram_quantile(${q}, sum by (le) (rate(${sel(`${DUR}_bucket`, RUN_NAME)}[$window])))`, `p${q * 100}`]), { fillOpacity: 0 }),
  timeseries(13, 'Latency percentiles (native histogram)', 'From the native histogram http_client_request_duration_seconds (empty unless stampede exports exponential histograms and Prometheus runs with native histograms enabled).', { h: 8, w: 12, x: 12, y: 22 }, 's',
    [0.5, 0.9, 0.95, 0.99].map((q) => [`histogram_quantile(${q}, sum(rate(${sel(DUR, RUN_NAME)}[$window])))`, `p${q * 100}`]), { fillOpacity: 0 }),

  row(20, 'Errors and checks', 30),
  timeseries(21, 'Failures/s by error type', 'Requests with error.type set (HTTP error status, timeout, connection errors...).', { h: 8, w: 8, x: 0, y: 31 }, 'reqps', [
    [ratePerSec(DUR, RUN_NAME, 'error_type', 'error_type!=""'), '{{error_type}}'],
  ]),
  timeseries(22, 'Responses/s by status code', 'Requests that got a response, by HTTP status code.', { h: 8, w: 8, x: 8, y: 31 }, 'reqps', [
    [ratePerSec(DUR, RUN_NAME, 'http_response_status_code', 'http_response_status_code!=""'), '{{http_response_status_code}}'],
  ]),
  timeseries(23, 'Checks/s (pass / fail)', 'stampede_checks_total by result.', { h: 8, w: 8, x: 16, y: 31 }, 'cps', [
    [`sum by (stampede_check_result) (rate(${sel('stampede_checks_total', RUN_NAME)}[$window]))`, '{{stampede_check_result}}'],
  ], {
    overrides: [
      { matcher: { id: 'byName', options: 'pass' }, properties: [{ id: 'color', value: { fixedColor: 'green', mode: 'fixed' } }] },
      { matcher: { id: 'byName', options: 'fail' }, properties: [{ id: 'color', value: { fixedColor: 'red', mode: 'fixed' } }] },
    ],
  }),

  row(30, 'Load', 39),
  timeseries(31, 'VUs and active requests', 'Running virtual users, configured maximum and in-flight requests.', { h: 8, w: 12, x: 0, y: 40 }, 'short', [
    [`sum(${sel('stampede_vus', RUN)})`, 'VUs'],
    [`sum(${sel('stampede_vus_max', RUN)})`, 'max VUs'],
    [`sum(${sel('http_client_active_requests', RUN_NAME)})`, 'active requests'],
  ], { fillOpacity: 0 }),
  timeseries(32, 'Iterations/s, intended rate and dropped iterations/s', 'Completed scenario iterations, the intended arrival rate of open-model scenarios (stampede_target_rate: a capacity search shows its staircase of steps) and iterations dropped by arrival-rate executors.', { h: 8, w: 12, x: 12, y: 40 }, 'short', [
    [`sum(rate(${sel('stampede_iterations_total', RUN)}[$window]))`, 'iterations/s'],
    [`sum(rate(${sel('stampede_dropped_iterations_total', RUN)}[$window]))`, 'dropped/s'],
    [`sum(${sel('stampede_target_rate_per_second', RUN)})`, 'intended rate/s'],
  ]),
  timeseries(33, 'Iteration duration', 'stampede_iteration_duration_seconds p50 / p95 (classic or native).', { h: 8, w: 12, x: 0, y: 48 }, 's',
    [0.5, 0.95].map((q) => [
      `histogram_quantile(${q}, sum by (le) (rate(${sel('stampede_iteration_duration_seconds_bucket', RUN)}[$window]))) or histogram_quantile(${q}, sum(rate(${sel('stampede_iteration_duration_seconds', RUN)}[$window])))`,
      `p${q * 100}`,
    ]), { fillOpacity: 0 }),
  timeseries(34, 'Body throughput (bytes/s)', 'Response and request body bytes per second.', { h: 8, w: 12, x: 12, y: 48 }, 'Bps', [
    [`sum(rate(${sel('http_client_response_body_size_bytes_sum', RUN_NAME)}[$window])) or sum(histogram_sum(rate(${sel('http_client_response_body_size_bytes', RUN_NAME)}[$window])))`, 'received (response bodies)'],
    [`sum(rate(${sel('http_client_request_body_size_bytes_sum', RUN_NAME)}[$window])) or sum(histogram_sum(rate(${sel('http_client_request_body_size_bytes', RUN_NAME)}[$window])))`, 'sent (request bodies)'],
  ]),

  row(40, 'Generators (one series per stampede instance)', 56),
  stat(44, 'Generators', 'stampede processes (instance label = service.instance.id) that exported this run.', { h: 4, w: 4, x: 0, y: 57 }, 'short',
    [`count(count by (instance) (count_over_time(${sel(`${DUR}_count`, RUN)}[$__range]))) or count(count by (instance) (count_over_time(${sel('process_memory_usage_bytes', RUN_ONLY)}[$__range])))`], { decimals: 0 }),
  stat(45, 'Peak generator CPU', 'Busiest generator\'s highest CPU utilization (process.cpu.utilization: share of the cores it may use). At 90 % or more the results may measure the generator, not the target: add generators.', { h: 4, w: 4, x: 0, y: 61 }, 'percentunit',
    [`max(max_over_time(sum by (instance) (${sel('process_cpu_utilization_ratio', RUN_ONLY)})[$__range:$__interval]))`], {
      decimals: 0,
      thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 0.75 }, { color: 'red', value: 0.9 }] },
    }),
  timeseries(41, 'Requests/s per generator', 'Completed requests per second of each stampede instance ($window rate window): an even split means the segments are balanced.', { h: 8, w: 20, x: 4, y: 57 }, 'reqps', [
    [ratePerSec(DUR, RUN_NAME, 'instance'), '{{instance}}'],
  ]),
  timeseries(42, 'CPU utilization per generator', 'process.cpu.utilization of each stampede process, user + system, as a share of the cores it may use (1 s sampling). Near 100 % the generator, not the target, limits the results.', { h: 8, w: 12, x: 0, y: 65 }, 'percentunit', [
    [`sum by (instance) (${sel('process_cpu_utilization_ratio', RUN_ONLY)})`, '{{instance}}'],
  ], { fillOpacity: 0 }),
  timeseries(43, 'Memory per generator', 'process.memory.usage (resident set size) of each stampede process.', { h: 8, w: 12, x: 12, y: 65 }, 'bytes', [
    [`sum by (instance) (${sel('process_memory_usage_bytes', RUN_ONLY)})`, '{{instance}}'],
  ], { fillOpacity: 0 }),
];

// ---------------------------------------------------------------- variables
const queryVar = (name, label, query, extra = {}) => ({
  datasource: DS,
  definition: query,
  hide: 0,
  includeAll: false,
  label,
  multi: false,
  name,
  options: [],
  query: { qryType: 1, query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
  refresh: 2,
  regex: '',
  skipUrlSync: false,
  sort: 1,
  type: 'query',
  ...extra,
});
const customVar = (name, label, values, current, extra = {}) => ({
  current: { selected: true, text: current, value: current },
  hide: 0,
  includeAll: false,
  label,
  multi: false,
  name,
  options: values.map((v) => ({ selected: v === current, text: v, value: v })),
  query: values.join(','),
  skipUrlSync: false,
  type: 'custom',
  ...extra,
});
const allCurrent = { selected: true, text: ['All'], value: ['$__all'] };

const dashboard = {
  annotations: {
    list: [
      {
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      },
      {
        datasource: DS,
        enable: true,
        expr: `count by (stampede_run_id, stampede_scenario) (${ANY_DUR(RUN)})`,
        hide: false,
        iconColor: 'purple',
        name: 'Run',
        step: '$__interval',
        tagKeys: 'stampede_scenario',
        textFormat: 'scenario {{stampede_scenario}}',
        titleFormat: 'run {{stampede_run_id}}',
        useValueForTime: false,
      },
    ],
  },
  description: 'stampede load test runs: throughput, latency, errors, load, per-request statistics.',
  editable: true,
  fiscalYearStartMonth: 0,
  graphTooltip: 1,
  links: [],
  panels,
  refresh: '10s',
  schemaVersion: 41,
  tags: ['stampede', 'load-testing', 'opentelemetry'],
  templating: {
    list: [
      { hide: 0, includeAll: false, label: 'Data source', multi: false, name: 'datasource', options: [], query: 'prometheus', refresh: 1, regex: '', skipUrlSync: false, type: 'datasource' },
      queryVar('run', 'Run', `label_values(${ANY_DUR('stampede_run_id!=""')}, stampede_run_id)`, { sort: 2 }),
      queryVar('scenario', 'Scenario', `label_values(${ANY_DUR('stampede_run_id=~"$run"')}, stampede_scenario)`, { includeAll: true, allValue: '.*', multi: true, current: allCurrent }),
      queryVar('name', 'Request name', `label_values(${ANY_DUR(RUN)}, url_template)`, { includeAll: true, allValue: '.*', multi: true, current: allCurrent }),
      customVar('quantile', 'Quantile', ['0.5', '0.9', '0.95', '0.99', '0.999'], '0.99'),
      customVar('window', 'Rate window', ['$__rate_interval', '15s', '30s', '1m', '5m'], '$__rate_interval'),
    ],
  },
  time: { from: 'now-1h', to: 'now' },
  timepicker: {},
  timezone: 'browser',
  title: 'stampede',
  uid: 'stampede',
  weekStart: '',
};

const json = `${JSON.stringify(dashboard, null, 2)}\n`;
if (process.argv.includes('--check')) {
  let current = '';
  try { current = readFileSync(OUT, 'utf8'); } catch { /* missing */ }
  if (current !== json) {
    console.error(`${OUT} is out of date: run node grafana/src/build-dashboard.mjs`);
    process.exit(1);
  }
  console.log('dashboard JSON matches generator');
} else {
  writeFileSync(OUT, json);
  console.log(`wrote ${OUT}`);
}
