/**
 * Periodic health checks with cached results. Checks run in the background on their own intervals;
 * the health routes only read `results()`, so a request never waits on a probe.
 */

export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  status: CheckStatus;
  output?: string;
  observedValue?: number;
  observedUnit?: string;
}

/** A check gets a signal that aborts when it exceeds its timeout (or the registry stops). */
export type HealthCheckFn = (signal: AbortSignal) => Promise<CheckResult> | CheckResult;

export interface HealthCheckOptions {
  /** How often the check runs once started. Default 30 000 ms. */
  intervalMs?: number;
  /** A run taking longer is `fail` and its signal is aborted. Default 5 000 ms. */
  timeoutMs?: number;
  /** A failing critical check means the service itself is broken (unhealthy, 503). Default false. */
  critical?: boolean;
  /** RFC health+json `componentType` (`component`, `datastore`, `system`). Default `component`. */
  componentType?: string;
  /** RFC health+json `componentId` (e.g. the provider or store kind). */
  componentId?: string;
  /** The measurement part of the health+json key `name:measurement`. Default `status`. */
  measurement?: string;
}

/** The last outcome of a check, as the routes show it. */
export interface LastResult {
  status: CheckStatus;
  output?: string;
  observedValue?: number;
  observedUnit?: string;
  /** ISO time the last run ended (or the registration time before the first run). */
  time: string;
  durationMs: number;
  critical: boolean;
  consecutiveFailures: number;
  /** False until the check has run once (status is then `warn`, output `not checked yet`). */
  checked: boolean;
  componentType: string;
  componentId?: string;
  measurement: string;
}

/** The part of a pino logger the registry uses. */
export interface HealthLog {
  warn(obj: object): void;
  info(obj: object): void;
}

export interface HealthCheckRegistryOptions {
  log?: HealthLog;
  /** Wall clock in epoch ms (for `time` and `durationMs`). Default `Date.now`. */
  now?: () => number;
}

export const HEALTH_CHECK_FAILED = 'health_check_failed';
export const HEALTH_CHECK_RECOVERED = 'health_check_recovered';
export const NOT_CHECKED_YET = 'not checked yet';

const STATUSES: ReadonlySet<string> = new Set<CheckStatus>(['pass', 'warn', 'fail']);

/** The reason a check's signal aborts when it runs past its timeout. */
export class HealthCheckTimeoutError extends Error {
  constructor(
    readonly check: string,
    readonly timeoutMs: number,
  ) {
    super(`Health check '${check}' timed out after ${timeoutMs} ms`);
    this.name = 'HealthCheckTimeoutError';
  }
}

interface InFlight {
  cancel(): void;
}

interface Entry {
  name: string;
  fn: HealthCheckFn;
  intervalMs: number;
  timeoutMs: number;
  last: LastResult;
  /** Whether the last transition logged was to `fail` (drives failed / recovered logging). */
  failing: boolean;
  /** The current run (timeout included); a due run while this is set is skipped. */
  running?: Promise<void> | undefined;
  inFlight?: InFlight | undefined;
  /** The check's own promise when it outlived its timeout: no new call until it settles. */
  straggler?: Promise<CheckResult> | undefined;
  timer?: NodeJS.Timeout | undefined;
}

export class HealthCheckRegistry {
  private readonly entries = new Map<string, Entry>();
  private readonly log: HealthLog | undefined;
  private readonly now: () => number;
  private started = false;
  /** Bumped by stop(): runs of an earlier generation record nothing. */
  private generation = 0;

  constructor(options: HealthCheckRegistryOptions = {}) {
    this.log = options.log;
    this.now = options.now ?? Date.now;
  }

  /** Registers a check; throws if the name is taken. Registered after start(), it runs at once. */
  registerHealthCheck(name: string, fn: HealthCheckFn, options: HealthCheckOptions = {}): void {
    if (this.entries.has(name)) throw new Error(`Health check '${name}' is already registered`);
    const { intervalMs = 30_000, timeoutMs = 5_000, critical = false, componentType = 'component', componentId, measurement = 'status' } = options;
    for (const [key, value] of [['intervalMs', intervalMs], ['timeoutMs', timeoutMs]] as const) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Health check '${name}': ${key} must be a positive number`);
    }
    const entry: Entry = {
      name,
      fn,
      intervalMs,
      timeoutMs,
      failing: false,
      last: {
        status: 'warn',
        output: NOT_CHECKED_YET,
        time: new Date(this.now()).toISOString(),
        durationMs: 0,
        critical,
        consecutiveFailures: 0,
        checked: false,
        componentType,
        ...(componentId !== undefined ? { componentId } : {}),
        measurement,
      },
    };
    this.entries.set(name, entry);
    if (this.started) {
      this.schedule(entry);
      void this.runOne(entry);
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  /** Runs every check once now and schedules each on its interval (timers are unref'ed). */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const entry of this.entries.values()) this.schedule(entry);
    void this.runAll();
  }

  /** Clears every timer and abandons runs in flight (their signals abort; they record nothing). */
  stop(): void {
    this.started = false;
    this.generation += 1;
    for (const entry of this.entries.values()) {
      if (entry.timer) clearInterval(entry.timer);
      entry.timer = undefined;
      entry.inFlight?.cancel();
    }
  }

  get running(): boolean {
    return this.started;
  }

  /** Runs every check once (a check already running is awaited, not started twice). Never rejects. */
  async runAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.runOne(entry)));
  }

  /** Runs one check now unless it is already running; false when no check has that name. */
  async runCheck(name: string): Promise<boolean> {
    const entry = this.entries.get(name);
    if (!entry) return false;
    await this.runOne(entry);
    return true;
  }

  /** The cached last result of every check (copies). */
  results(): Record<string, LastResult> {
    return Object.fromEntries([...this.entries].map(([name, entry]) => [name, { ...entry.last }]));
  }

  result(name: string): LastResult | undefined {
    const entry = this.entries.get(name);
    return entry ? { ...entry.last } : undefined;
  }

  private schedule(entry: Entry): void {
    if (entry.timer) return;
    entry.timer = setInterval(() => void this.runOne(entry), entry.intervalMs);
    entry.timer.unref();
  }

  private runOne(entry: Entry): Promise<void> {
    if (entry.running) return entry.running;
    const run = this.execute(entry).finally(() => {
      entry.running = undefined;
    });
    entry.running = run;
    return run;
  }

  private async execute(entry: Entry): Promise<void> {
    const generation = this.generation;
    const started = this.now();
    if (entry.straggler) {
      // The previous call ignored its aborted signal and is still going: do not pile another on it.
      this.record(entry, { status: 'fail', output: `previous run still pending after timing out (${entry.timeoutMs} ms)` }, 0);
      return;
    }
    const controller = new AbortController();
    const call = invoke(entry.fn, controller.signal);
    const result = await new Promise<CheckResult | undefined>((resolve) => {
      let settled = false;
      const finish = (value: CheckResult | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        entry.inFlight = undefined;
        resolve(value);
      };
      const timer = setTimeout(() => {
        controller.abort(new HealthCheckTimeoutError(entry.name, entry.timeoutMs));
        entry.straggler = call;
        void call.then(() => {
          if (entry.straggler === call) entry.straggler = undefined;
        });
        finish({ status: 'fail', output: `timed out after ${entry.timeoutMs} ms` });
      }, entry.timeoutMs);
      timer.unref();
      entry.inFlight = {
        cancel: () => {
          controller.abort(new Error('health checks stopped'));
          finish(undefined);
        },
      };
      void call.then(finish);
    });
    if (result === undefined || generation !== this.generation) return;
    this.record(entry, result, Math.max(0, this.now() - started));
  }

  private record(entry: Entry, result: CheckResult, durationMs: number): void {
    const previous = entry.last;
    const consecutiveFailures = result.status === 'fail' ? previous.consecutiveFailures + 1 : 0;
    entry.last = {
      status: result.status,
      ...(result.output !== undefined ? { output: result.output } : {}),
      ...(result.observedValue !== undefined ? { observedValue: result.observedValue } : {}),
      ...(result.observedUnit !== undefined ? { observedUnit: result.observedUnit } : {}),
      time: new Date(this.now()).toISOString(),
      durationMs,
      critical: previous.critical,
      consecutiveFailures,
      checked: true,
      componentType: previous.componentType,
      ...(previous.componentId !== undefined ? { componentId: previous.componentId } : {}),
      measurement: previous.measurement,
    };
    if (result.status === 'fail' && !entry.failing) {
      entry.failing = true;
      this.emit('warn', {
        event: HEALTH_CHECK_FAILED,
        component: 'health',
        check: entry.name,
        output: result.output,
        consecutive_failures: consecutiveFailures,
        critical: previous.critical,
      });
    } else if (result.status !== 'fail' && entry.failing) {
      entry.failing = false;
      this.emit('info', {
        event: HEALTH_CHECK_RECOVERED,
        component: 'health',
        check: entry.name,
        status: result.status,
        failures: previous.consecutiveFailures,
      });
    }
  }

  private emit(level: 'warn' | 'info', obj: object): void {
    try {
      this.log?.[level](obj);
    } catch {
      // Logging must never break the health runner.
    }
  }
}

/** Calls the check, turning a throw, a rejection or a malformed result into `fail`. Never rejects. */
async function invoke(fn: HealthCheckFn, signal: AbortSignal): Promise<CheckResult> {
  try {
    const result = await fn(signal);
    if (typeof result !== 'object' || result === null || !STATUSES.has((result as { status?: unknown }).status as string)) {
      return { status: 'fail', output: 'check returned an invalid result' };
    }
    return result;
  } catch (error) {
    return { status: 'fail', output: error instanceof Error ? error.message : String(error) };
  }
}
