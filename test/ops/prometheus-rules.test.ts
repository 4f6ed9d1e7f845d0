import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AlertEngine } from '../../src/health/alerts/alert-engine.js';
import { HISTOGRAM_METRICS, SCALAR_METRICS } from '../support/metric-catalogue.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const RULES = 'ops/prometheus/alerts.yml';
const RULE_TESTS = 'ops/prometheus/alerts.test.yml';
const CONFIG = 'ops/prometheus/prometheus.yml';
const DASHBOARD = 'ops/grafana/dashboard.json';

const HISTOGRAMS: readonly string[] = HISTOGRAM_METRICS;
const SCALARS: readonly string[] = SCALAR_METRICS;
const KNOWN = new Set([...SCALARS, ...HISTOGRAMS.flatMap((h) => [h, `${h}_bucket`, `${h}_sum`, `${h}_count`])]);
/** prom-client's collectDefaultMetrics(). */
const DEFAULT_PROCESS_METRIC = /^(process|nodejs)_[a-z0-9_]+$/;

const isKnownMetric = (name: string) => KNOWN.has(name) || DEFAULT_PROCESS_METRIC.test(name);
/** Strips histogram suffixes so coverage is judged per exposed metric. */
const baseMetric = (name: string) => HISTOGRAMS.find((h) => name.startsWith(h)) ?? name;

const KEYWORDS = new Set([
  'and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan',
]);

/** Metric names a PromQL expression selects (identifiers that are not functions, keywords, labels or literals). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?/gi, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = stripped.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------------
// promtool

const PROMTOOL = process.env.PROMTOOL_BIN || 'promtool';

function promtoolAvailable(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync(PROMTOOL, ['--version'], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: r.error.message };
  if (r.status !== 0) return { ok: false, reason: `exit ${r.status}: ${r.stderr}` };
  return { ok: true };
}

function requirePromtool(): void {
  const available = promtoolAvailable();
  if (available.ok) return;
  const where = process.env.CI ? 'CI must install it' : 'install it';
  // Deliberately a failure, not a skip: the alert rules are only checked if promtool runs.
  throw new Error(
    `promtool not found (${PROMTOOL}: ${available.reason}). ${where} (Debian/Ubuntu: apt-get install prometheus; ` +
      'or download a Prometheus release) or point PROMTOOL_BIN at the binary.',
  );
}

function promtool(...args: string[]): { status: number | null; output: string } {
  requirePromtool();
  const r = spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('Prometheus rules and config (promtool)', () => {
  it('promtool is available', () => {
    expect(requirePromtool).not.toThrow();
  });

  it(`promtool check rules ${RULES} finds the 5 alerting rules`, () => {
    const { status, output } = promtool('check', 'rules', RULES);
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS: 5 rules found/);
  });

  it(`promtool test rules ${RULE_TESTS}: each alert fires and resolves as intended`, () => {
    const { status, output } = promtool('test', 'rules', RULE_TESTS);
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS/);
  });

  it(`promtool check config ${CONFIG} (loads the rules file)`, () => {
    const { status, output } = promtool('check', 'config', CONFIG);
    expect(status, output).toBe(0);
    expect(output).toMatch(/is valid prometheus config file syntax/);
    expect(output).toMatch(/SUCCESS: 5 rules found/);
  });

  it('alerts.yml has the same alerts as the in-process engine, over known metrics only', () => {
    const text = readFileSync(join(ROOT, RULES), 'utf8');
    const names = [...text.matchAll(/^\s*-\s*alert:\s*(\S+)\s*$/gm)].map((m) => m[1]);
    const engine = new AlertEngine({
      requestsTotal: () => 0,
      errorsTotal: () => 0,
      openBreakers: () => [],
      memoryUsagePercent: () => 0,
      fallbacksTotal: () => 0,
      activeSessions: () => 0,
    });
    expect(names.sort()).toEqual(engine.alerts().map((a) => a.name).sort());
    const severities = [...text.matchAll(/^\s*severity:\s*(\S+)\s*$/gm)].map((m) => m[1]);
    expect(severities).toHaveLength(5);
    for (const alert of engine.alerts()) {
      const block = text.slice(text.indexOf(`alert: ${alert.name}`)).split(/\n\s*- alert:/)[0] ?? '';
      expect(block, alert.name).toContain(`severity: ${alert.severity}`);
      expect(block, alert.name).toMatch(/summary:/);
      expect(block, alert.name).toMatch(/description:/);
    }
    const exprMetrics = [...text.matchAll(/\b[a-z_]+_(?:total|seconds_count|seconds_bucket|utilization|active|state)\b/g)].map(
      (m) => m[0],
    );
    expect(exprMetrics.length).toBeGreaterThan(0);
    expect(exprMetrics.filter((n) => !isKnownMetric(n))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Grafana dashboard

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  __inputs?: { name: string; type: string; pluginId: string }[];
  schemaVersion: number;
  title: string;
  uid: string;
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, DASHBOARD), 'utf8')) as Dashboard;
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dataPanels = allPanels.filter((p) => p.type !== 'row');
const targets = dataPanels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title ?? `#${p.id}`, target: t })));

describe(`Grafana dashboard (${DASHBOARD})`, () => {
  it('is an importable dashboard with a ${DS_PROMETHEUS} datasource input', () => {
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.uid).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.__inputs).toEqual([
      expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' }),
    ]);
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dataPanels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.gridPos, p.title).toBeDefined();
    }
  });

  it('every panel target queries only metrics the server exposes', () => {
    expect(targets.length).toBeGreaterThan(20);
    const unknown: string[] = [];
    for (const { panel, target } of targets) {
      expect(target.expr, panel).toBeTruthy();
      expect(target.datasource?.uid, panel).toBe('${DS_PROMETHEUS}');
      const names = metricNames(target.expr ?? '');
      expect(names.length, `${panel}: ${target.expr}`).toBeGreaterThan(0);
      for (const name of names) if (!isKnownMetric(name)) unknown.push(`${panel}: ${name}`);
    }
    expect(unknown).toEqual([]);
  });

  it('covers every exposed metric', () => {
    const used = new Set(targets.flatMap(({ target }) => metricNames(target.expr ?? '')).map(baseMetric));
    expect([...SCALARS, ...HISTOGRAMS].filter((m) => !used.has(m))).toEqual([]);
  });

  it('every panel expression is valid PromQL (promtool check rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-promql-'));
    tempDirs.push(dir);
    const rules = targets.map(({ target }, i) => {
      // Grafana's variables are not PromQL: give them values Prometheus would see.
      const expr = (target.expr ?? '').replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
      return `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(expr)}\n`;
    });
    const file = join(dir, 'dashboard-rules.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('')}`);
    const { status, output } = promtool('check', 'rules', file);
    expect(status, output).toBe(0);
    expect(output).toContain(`SUCCESS: ${targets.length} rules found`);
  });
});

describe('metricNames', () => {
  it('finds selected metrics and ignores functions, labels, keywords and numbers', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_server_request_duration_seconds_bucket{route=~"/api.*"}[$__rate_interval])))',
      ),
    ).toEqual(['http_server_request_duration_seconds_bucket']);
    expect(
      metricNames('sum(rate(chat_errors_total[5m])) / clamp_min(sum(rate(http_server_request_duration_seconds_count[5m])), 1e-9) > 0.10'),
    ).toEqual(['chat_errors_total', 'http_server_request_duration_seconds_count']);
    expect(metricNames('max by (circuit) (a_state{state="open"} * 2) or on (circuit) b_metric')).toEqual(['a_state', 'b_metric']);
  });
});
