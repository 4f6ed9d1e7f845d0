/**
 * In-process alert evaluation: the same five rules as ops/prometheus/alerts.yml, evaluated over sliding
 * windows of samples taken from the running server, so a deployment without Prometheus still gets
 * `GET /health/alerts` and `alert_firing` / `alert_resolved` log lines.
 *
 * Cumulative counters (requests, errors, fallbacks) are sampled with a timestamp on every evaluation;
 * a window's value is the increase between the newest sample and the newest sample at or before the
 * window's start (the oldest one while the engine has run for less than a window). Samples older than
 * the longest window are dropped, keeping one as that window's baseline, so memory stays bounded.
 */

export type AlertName =
  | 'high_error_rate'
  | 'circuit_breaker_open'
  | 'high_memory_usage'
  | 'frequent_fallbacks'
  | 'too_many_active_sessions';

export type AlertState = 'inactive' | 'pending' | 'firing';
export type AlertSeverity = 'critical' | 'warning';

export interface AlertSources {
  /** Cumulative count of HTTP requests served. */
  requestsTotal(): number;
  /** Cumulative count of errors (5xx responses and failed streams). */
  errorsTotal(): number;
  /** Names of the circuit breakers currently open. */
  openBreakers(): string[];
  /** Memory in use, 0–100. */
  memoryUsagePercent(): number;
  /** Cumulative count of fallbacks used. */
  fallbacksTotal(): number;
  /** Chat turns in progress. */
  activeSessions(): number;
}

export interface AlertThresholds {
  /** Errors / requests over the window, 0–1; fires above it. */
  errorRate: number;
  /** Fewer requests than this in the window never count as a high error rate. */
  errorRateMinRequests: number;
  errorRateWindowMs: number;
  /** How long the error rate must stay high before the alert fires. */
  errorRateForMs: number;
  /** Percent, 0–100; fires above it. */
  memoryPercent: number;
  memoryForMs: number;
  /** Fires when more fallbacks than this happened in the window. */
  fallbacks: number;
  fallbackWindowMs: number;
  /** Fires above this many active sessions. */
  activeSessions: number;
}

export const DEFAULT_THRESHOLDS: Readonly<AlertThresholds> = Object.freeze({
  errorRate: 0.1,
  errorRateMinRequests: 20,
  errorRateWindowMs: 5 * 60_000,
  errorRateForMs: 5 * 60_000,
  memoryPercent: 90,
  memoryForMs: 2 * 60_000,
  fallbacks: 3,
  fallbackWindowMs: 60_000,
  activeSessions: 100,
});

export interface AlertClock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface AlertLog {
  warn(obj: object): void;
  info(obj: object): void;
}

export interface AlertEngineOptions {
  evaluateIntervalMs?: number;
  clock?: AlertClock;
  log?: AlertLog;
  thresholds?: Partial<AlertThresholds>;
}

export interface AlertStatus {
  name: AlertName;
  state: AlertState;
  severity: AlertSeverity;
  /** The rule's current measurement (error ratio 0–1, open breakers, memory %, fallbacks, sessions); null before the first evaluation. */
  value: number | null;
  /** When the alert entered its current state (ISO 8601); null while it has never been active. */
  since: string | null;
  description: string;
  labels: Record<string, string>;
}

interface Sample {
  at: number;
  requests: number;
  errors: number;
  fallbacks: number;
}

interface Measurement {
  condition: boolean;
  value: number;
  description: string;
  labels?: Record<string, string>;
}

interface Rule {
  name: AlertName;
  severity: AlertSeverity;
  /** How long the condition must hold before firing; 0 fires on the first evaluation it holds. */
  forMs: number;
  measure(ctx: EvaluationContext): Measurement;
}

interface EvaluationContext {
  now: number;
  increase(field: 'requests' | 'errors' | 'fallbacks', windowMs: number): number;
}

interface RuleState {
  state: AlertState;
  /** When the current state began (epoch ms); null while never active. */
  since: number | null;
  /** When the condition started holding continuously (epoch ms). */
  activeSince: number | null;
  value: number | null;
  description: string;
  labels: Record<string, string>;
}

const systemClock: AlertClock = { now: () => Date.now() };
const silentLog: AlertLog = { warn: () => undefined, info: () => undefined };

const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`;
const minutes = (ms: number): string => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`);

export class AlertEngine {
  readonly evaluateIntervalMs: number;
  readonly thresholds: Readonly<AlertThresholds>;
  private readonly clock: AlertClock;
  private readonly log: AlertLog;
  private readonly rules: Rule[];
  private readonly states = new Map<AlertName, RuleState>();
  private readonly longestWindowMs: number;
  private samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastEvaluatedAt: number | null = null;

  constructor(
    private readonly sources: AlertSources,
    options: AlertEngineOptions = {},
  ) {
    this.evaluateIntervalMs = options.evaluateIntervalMs ?? 15_000;
    if (!(this.evaluateIntervalMs > 0)) throw new RangeError('evaluateIntervalMs must be positive');
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? silentLog;
    this.thresholds = Object.freeze({ ...DEFAULT_THRESHOLDS, ...options.thresholds });
    this.rules = buildRules(this.thresholds, sources);
    this.longestWindowMs = Math.max(this.thresholds.errorRateWindowMs, this.thresholds.fallbackWindowMs);
    for (const rule of this.rules) {
      this.states.set(rule.name, {
        state: 'inactive',
        since: null,
        activeSince: null,
        value: null,
        description: 'Not evaluated yet',
        labels: {},
      });
    }
  }

  /** Evaluates every evaluateIntervalMs on an unref'ed timer (and once now); idempotent. */
  start(): void {
    if (this.timer) return;
    this.safeEvaluate();
    this.timer = setInterval(() => this.safeEvaluate(), this.evaluateIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Samples the sources and updates every alert's state. */
  evaluate(): void {
    const now = this.clock.now();
    const sample = this.takeSample(now);
    if (sample) {
      this.samples.push(sample);
      this.prune(now);
    }
    const ctx: EvaluationContext = { now, increase: (field, windowMs) => this.increase(field, windowMs, now) };

    for (const rule of this.rules) {
      const current = this.states.get(rule.name);
      if (!current) continue;
      let m: Measurement;
      try {
        if (!sample && usesCounters(rule.name)) throw new Error('counter sources unavailable');
        m = rule.measure(ctx);
      } catch (error) {
        // A broken source leaves the alert as it was rather than resolving (or firing) it by accident.
        this.log.warn({ event: 'alert_evaluation_failed', component: 'alerts', alert: rule.name, err: describe(error) });
        continue;
      }
      this.transition(rule, current, m, now);
    }
    this.lastEvaluatedAt = now;
  }

  alerts(): AlertStatus[] {
    return this.rules.map((rule) => {
      const s = this.states.get(rule.name) as RuleState;
      return {
        name: rule.name,
        state: s.state,
        severity: rule.severity,
        value: s.value,
        since: s.since === null ? null : new Date(s.since).toISOString(),
        description: s.description,
        labels: { ...s.labels },
      };
    });
  }

  firing(): AlertStatus[] {
    return this.alerts().filter((a) => a.state === 'firing');
  }

  /** ISO time of the last evaluation; null before the first. */
  evaluatedAt(): string | null {
    return this.lastEvaluatedAt === null ? null : new Date(this.lastEvaluatedAt).toISOString();
  }

  /** Samples held for the counter windows (bounded by the longest window / the evaluation interval). */
  sampleCount(): number {
    return this.samples.length;
  }

  private safeEvaluate(): void {
    try {
      this.evaluate();
    } catch (error) {
      this.log.warn({ event: 'alert_evaluation_failed', component: 'alerts', err: describe(error) });
    }
  }

  private takeSample(now: number): Sample | null {
    try {
      return {
        at: now,
        requests: this.sources.requestsTotal(),
        errors: this.sources.errorsTotal(),
        fallbacks: this.sources.fallbacksTotal(),
      };
    } catch (error) {
      this.log.warn({ event: 'alert_evaluation_failed', component: 'alerts', err: describe(error) });
      return null;
    }
  }

  /** Drops samples older than the longest window, keeping the newest of them as the window's baseline. */
  private prune(now: number): void {
    const cutoff = now - this.longestWindowMs;
    let firstKept = 0;
    while (firstKept + 1 < this.samples.length && (this.samples[firstKept + 1] as Sample).at <= cutoff) firstKept++;
    if (firstKept > 0) this.samples = this.samples.slice(firstKept);
  }

  private increase(field: 'requests' | 'errors' | 'fallbacks', windowMs: number, now: number): number {
    const latest = this.samples[this.samples.length - 1];
    if (!latest) return 0;
    const start = now - windowMs;
    let baseline = this.samples[0] as Sample;
    for (const s of this.samples) {
      if (s.at <= start) baseline = s;
      else break;
    }
    // Sum the increases between consecutive samples, so a counter reset (a smaller value) counts
    // from zero instead of producing a negative window, as Prometheus' increase() does.
    let total = 0;
    let previous = baseline;
    for (let i = this.samples.indexOf(baseline) + 1; i < this.samples.length; i++) {
      const s = this.samples[i] as Sample;
      total += s[field] >= previous[field] ? s[field] - previous[field] : s[field];
      previous = s;
    }
    return total;
  }

  private transition(rule: Rule, s: RuleState, m: Measurement, now: number): void {
    s.value = m.value;
    s.description = m.description;
    s.labels = m.labels ?? {};
    if (!m.condition) {
      s.activeSince = null;
      if (s.state === 'inactive') return;
      const wasFiring = s.state === 'firing';
      s.state = 'inactive';
      s.since = now;
      if (wasFiring) this.log.info({ event: 'alert_resolved', component: 'alerts', alert: rule.name });
      return;
    }
    if (s.activeSince === null) s.activeSince = now;
    if (s.state === 'firing') return;
    if (now - s.activeSince >= rule.forMs) {
      s.state = 'firing';
      s.since = now;
      this.log.warn({
        event: 'alert_firing',
        component: 'alerts',
        alert: rule.name,
        value: m.value,
        description: m.description,
      });
    } else if (s.state !== 'pending') {
      s.state = 'pending';
      s.since = now;
    }
  }
}

function usesCounters(name: AlertName): boolean {
  return name === 'high_error_rate' || name === 'frequent_fallbacks';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function buildRules(t: Readonly<AlertThresholds>, sources: AlertSources): Rule[] {
  return [
    {
      name: 'high_error_rate',
      severity: 'critical',
      forMs: t.errorRateForMs,
      measure: (ctx) => {
        const requests = ctx.increase('requests', t.errorRateWindowMs);
        const errors = ctx.increase('errors', t.errorRateWindowMs);
        const rate = requests > 0 ? errors / requests : 0;
        const window = minutes(t.errorRateWindowMs);
        const enough = requests >= t.errorRateMinRequests;
        return {
          condition: enough && rate > t.errorRate,
          value: rate,
          description: enough
            ? `Error rate ${percent(rate)} over the last ${window} (${errors} errors / ${requests} requests); threshold ${percent(t.errorRate)}`
            : `Error rate not judged: ${requests} requests over the last ${window} (need ${t.errorRateMinRequests})`,
        };
      },
    },
    {
      name: 'circuit_breaker_open',
      severity: 'critical',
      forMs: 0,
      measure: (): Measurement => {
        const open = [...sources.openBreakers()].sort();
        return {
          condition: open.length > 0,
          value: open.length,
          description:
            open.length > 0 ? `Circuit breaker open: ${open.join(', ')}` : 'All circuit breakers closed or half-open',
          labels: open.length > 0 ? { circuits: open.join(',') } : {},
        };
      },
    },
    {
      name: 'high_memory_usage',
      severity: 'warning',
      forMs: t.memoryForMs,
      measure: () => {
        const used = sources.memoryUsagePercent();
        return {
          condition: used > t.memoryPercent,
          value: used,
          description: `Memory usage ${used.toFixed(1)}%; threshold ${t.memoryPercent}% for ${minutes(t.memoryForMs)}`,
        };
      },
    },
    {
      name: 'frequent_fallbacks',
      severity: 'warning',
      forMs: 0,
      measure: (ctx) => {
        const count = ctx.increase('fallbacks', t.fallbackWindowMs);
        return {
          condition: count > t.fallbacks,
          value: count,
          description: `${count} fallbacks in the last ${minutes(t.fallbackWindowMs)}; threshold ${t.fallbacks}`,
        };
      },
    },
    {
      name: 'too_many_active_sessions',
      severity: 'warning',
      forMs: 0,
      measure: () => {
        const active = sources.activeSessions();
        return {
          condition: active > t.activeSessions,
          value: active,
          description: `${active} active sessions; threshold ${t.activeSessions}`,
        };
      },
    },
  ];
}
