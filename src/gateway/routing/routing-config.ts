import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

/** yaml is loaded only for a YAML routing file (JSON ones, and no file, never pay for it). */
const requireModule = createRequire(import.meta.url);
function parseYaml(text: string, options: { prettyErrors: boolean }): unknown {
  return (requireModule('yaml') as typeof Yaml).parse(text, options);
}
import { z } from 'zod';
import type { CircuitBreakerConfig, SlidingWindowConfig } from '../../resilience/circuit-breaker/types.js';

/**
 * Model routing for the /v1/messages gateway (and /api/chat): which upstream targets serve a requested
 * model, in which order, with which keys and breaker settings. Read once at startup from the file named
 * by CONFIG_FILE; every problem is reported at once, with its path in the file, and no key is ever echoed.
 */

/** The route used for any model without a route of its own. */
export const WILDCARD_ROUTE = '*';

/** Breaker settings when neither the file's defaults nor the target say otherwise (the project's defaults). */
export const DEFAULT_BREAKER: Readonly<CircuitBreakerConfig> = Object.freeze({
  failureThreshold: 3,
  timeoutSeconds: 30,
  successThreshold: 2,
  halfOpenMaxCalls: 1,
});

/** Retries per target before moving on, when the file does not say. */
export const DEFAULT_RETRIES = 2;

export interface Target {
  /** Unique within its route (the context fallback included): names the target's breaker and logs. */
  name: string;
  /** Without trailing slash. */
  baseUrl: string;
  /** Resolved from `api_key` or `env[api_key_env]`. Never log it. */
  apiKey: string;
  /** Model sent upstream; absent: the model the client asked for. */
  model?: string;
  /** Project defaults ← file `defaults.breaker` ← the target's `breaker`. */
  breaker: CircuitBreakerConfig;
}

export interface Route {
  /** The model name this route answers for (`"*"` for the catch-all route). */
  model: string;
  /** Tried in order. */
  targets: Target[];
  /** Used once when a target says the context is too long. */
  contextFallback?: Target;
  /** Retries per target before moving on (0–10). */
  retries: number;
}

export interface RoutingConfig {
  routes: Map<string, Route>;
  /** The route for `model`: its own, else the `"*"` route, else undefined. */
  resolve(model: string): Route | undefined;
}

export class RoutingConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`Invalid routing config ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RoutingConfigError';
  }
}

// ---------------------------------------------------------------------------------------------------------
// Schema (snake_case, as written in the file)

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_RETRIES = 10;

const positiveInt = z.number().int('must be a whole number').min(1, 'must be at least 1');
const percent = z.number().gt(0, 'must be a percentage in (0, 100]').max(100, 'must be a percentage in (0, 100]');

const slidingWindowSchema = z
  .strictObject({
    type: z.enum(['count', 'time'], { message: 'must be "count" or "time"' }),
    /** Calls (count) or seconds (time). */
    size: z.number().min(1, 'must be at least 1'),
    minimum_calls: positiveInt,
    failure_rate_threshold: percent,
    slow_call_duration_ms: z.number().min(0, 'must be 0 or more').optional(),
    slow_call_rate_threshold: percent.optional(),
  })
  // zod runs this even when a field above failed, so it checks the types it relies on.
  .superRefine((w, ctx) => {
    const size: unknown = w.size;
    const minimum: unknown = w.minimum_calls;
    if (w.type !== 'count' || typeof size !== 'number') return;
    if (!Number.isInteger(size)) {
      ctx.addIssue({ code: 'custom', path: ['size'], message: 'must be a whole number of calls for a count window' });
    }
    // A count window never holds more than `size` calls: a larger minimum would silently never open.
    if (typeof minimum === 'number' && minimum > size) {
      ctx.addIssue({ code: 'custom', path: ['minimum_calls'], message: 'must not exceed the window size' });
    }
  });

/** Every field optional: merged over the defaults. */
const breakerSchema = z.strictObject({
  failure_threshold: positiveInt.optional(),
  success_threshold: positiveInt.optional(),
  timeout_seconds: z.number().min(0, 'must be 0 or more').max(86_400, 'must be at most 86400 (one day)').optional(),
  half_open_max_calls: positiveInt.optional(),
  sliding_window: slidingWindowSchema.optional(),
});
type BreakerOverrides = z.infer<typeof breakerSchema>;

const retriesSchema = z
  .number()
  .int('must be a whole number')
  .min(0, `must be between 0 and ${MAX_RETRIES}`)
  .max(MAX_RETRIES, `must be between 0 and ${MAX_RETRIES}`);

function targetSchema(env: NodeJS.ProcessEnv) {
  return z
    .strictObject({
      name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
      base_url: z
        .url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
        // Runs even after the format check failed: an unparsable URL is already reported.
        .refine((u) => {
          if (!URL.canParse(u)) return true;
          const url = new URL(u);
          return url.search === '' && url.hash === '';
        }, 'must not have a query string or fragment'),
      api_key: z.string().trim().min(1, 'must not be empty').optional(),
      api_key_env: z.string().regex(ENV_NAME, 'must be an environment variable name, like ANTHROPIC_API_KEY').optional(),
      model: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
      breaker: breakerSchema.optional(),
    })
    // zod runs this even when a field above failed, so it trusts nothing it reads.
    .superRefine((t, ctx) => {
      const hasKey = t.api_key !== undefined;
      const keyEnv: unknown = t.api_key_env;
      if (hasKey && keyEnv !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'give either api_key or api_key_env, not both' });
      } else if (!hasKey && keyEnv === undefined) {
        ctx.addIssue({ code: 'custom', message: 'needs api_key or api_key_env' });
      } else if (typeof keyEnv === 'string' && ENV_NAME.test(keyEnv) && !envValue(env, keyEnv)) {
        // Only a valid variable name is named: a key pasted here by mistake is never echoed.
        ctx.addIssue({ code: 'custom', path: ['api_key_env'], message: `environment variable ${keyEnv} is not set` });
      }
    });
}
type RawTarget = z.infer<ReturnType<typeof targetSchema>>;

function routeSchema(env: NodeJS.ProcessEnv) {
  const target = targetSchema(env);
  return z
    .strictObject({
      targets: z.array(target).min(1, 'needs at least one target'),
      context_fallback: target.optional(),
      /** Overrides `defaults.retries` for this route. */
      retries: retriesSchema.optional(),
    })
    .superRefine(checkUniqueNames, { when: () => true });
}

/**
 * Target names must be unique within a route (the context fallback included), since they name breakers.
 * Runs even when other parts of the route are invalid, so every problem is reported at once; it
 * therefore reads the (possibly unvalidated) value defensively.
 */
function checkUniqueNames(route: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(route)) return;
  const seen = new Map<string, string>();
  const visit = (item: unknown, path: (string | number)[]) => {
    if (!isRecord(item) || typeof item['name'] !== 'string') return;
    const name = item['name'].trim();
    if (name === '') return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, formatPath(path));
    else ctx.addIssue({ code: 'custom', path: [...path, 'name'], message: `duplicate target name ${JSON.stringify(name)} (already used by ${first})` });
  };
  if (Array.isArray(route['targets'])) route['targets'].forEach((t, i) => visit(t, ['targets', i]));
  visit(route['context_fallback'], ['context_fallback']);
}

function fileSchema(env: NodeJS.ProcessEnv) {
  return z.strictObject({
    defaults: z
      .strictObject({
        breaker: breakerSchema.optional(),
        retries: retriesSchema.optional(),
      })
      .optional(),
    routes: z
      .record(z.string().trim().min(1, 'a route needs a model name (or "*")'), routeSchema(env))
      .refine((routes) => Object.keys(routes).length > 0, 'needs at least one route'),
  });
}

// ---------------------------------------------------------------------------------------------------------
// Loading

/** Reads a .json, .yaml or .yml routing file; throws RoutingConfigError listing every problem. */
export function loadRoutingConfig(path: string, env: NodeJS.ProcessEnv): RoutingConfig {
  const data = parseFile(path);
  const parsed = fileSchema(env).safeParse(data, { error: errorMessage });
  if (!parsed.success) {
    throw new RoutingConfigError(path, parsed.error.issues.flatMap(describeIssue));
  }
  return build(parsed.data, env);
}

/** The routing used when no CONFIG_FILE is set: every model goes to one Anthropic target. */
export function defaultRoutingConfig(baseUrl: string, apiKey: string): RoutingConfig {
  const target: Target = { name: 'anthropic', baseUrl: trimSlashes(baseUrl), apiKey, breaker: { ...DEFAULT_BREAKER } };
  const route: Route = { model: WILDCARD_ROUTE, targets: [target], retries: DEFAULT_RETRIES };
  return makeConfig(new Map([[WILDCARD_ROUTE, route]]));
}

function parseFile(path: string): unknown {
  const ext = extname(path).toLowerCase();
  if (ext !== '.json' && ext !== '.yaml' && ext !== '.yml') {
    throw new RoutingConfigError(path, [`unsupported file type ${JSON.stringify(ext || '(none)')}: use .json, .yaml or .yml`]);
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RoutingConfigError(path, [`cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  if (ext === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      // V8's message quotes the text around the error, which may hold a key: report only the position.
      const position = /position (\d+)/.exec((error as Error).message)?.[1];
      const where = position === undefined ? '' : ` at ${lineColumn(text, Number(position))}`;
      throw new RoutingConfigError(path, [`not valid JSON${where}`]);
    }
  }
  try {
    return parseYaml(text, { prettyErrors: false }) as unknown;
  } catch (error) {
    // yaml's message may quote the offending source line: keep only its code and position.
    const e = error as { code?: unknown; pos?: unknown };
    const offset = Array.isArray(e.pos) && typeof e.pos[0] === 'number' ? e.pos[0] : undefined;
    const where = offset === undefined ? '' : ` at ${lineColumn(text, offset)}`;
    const code = typeof e.code === 'string' ? ` (${e.code})` : '';
    throw new RoutingConfigError(path, [`not valid YAML${where}${code}`]);
  }
}

type RawFile = z.infer<ReturnType<typeof fileSchema>>;

function build(file: RawFile, env: NodeJS.ProcessEnv): RoutingConfig {
  const defaultBreaker = mergeBreaker(DEFAULT_BREAKER, file.defaults?.breaker);
  const defaultRetries = file.defaults?.retries ?? DEFAULT_RETRIES;
  const routes = new Map<string, Route>();
  for (const [rawModel, raw] of Object.entries(file.routes)) {
    const model = rawModel.trim();
    const toTarget = (t: RawTarget): Target => {
      const target: Target = {
        name: t.name,
        baseUrl: trimSlashes(t.base_url),
        // Both present by validation: api_key, or a set api_key_env.
        apiKey: t.api_key ?? envValue(env, t.api_key_env ?? '') ?? '',
        breaker: mergeBreaker(defaultBreaker, t.breaker),
      };
      if (t.model !== undefined) target.model = t.model;
      return target;
    };
    const route: Route = { model, targets: raw.targets.map(toTarget), retries: raw.retries ?? defaultRetries };
    if (raw.context_fallback) route.contextFallback = toTarget(raw.context_fallback);
    routes.set(model, route);
  }
  return makeConfig(routes);
}

function makeConfig(routes: Map<string, Route>): RoutingConfig {
  return {
    routes,
    resolve: (model) => routes.get(model) ?? routes.get(WILDCARD_ROUTE),
  };
}

/** Field by field; a sliding window replaces the one below it as a whole. */
function mergeBreaker(base: CircuitBreakerConfig, over: BreakerOverrides | undefined): CircuitBreakerConfig {
  const merged: CircuitBreakerConfig = {
    failureThreshold: over?.failure_threshold ?? base.failureThreshold,
    successThreshold: over?.success_threshold ?? base.successThreshold,
    timeoutSeconds: over?.timeout_seconds ?? base.timeoutSeconds,
    halfOpenMaxCalls: over?.half_open_max_calls ?? base.halfOpenMaxCalls,
  };
  const window = over?.sliding_window ? toSlidingWindow(over.sliding_window) : base.slidingWindow;
  if (window) merged.slidingWindow = { ...window };
  return merged;
}

function toSlidingWindow(w: NonNullable<BreakerOverrides['sliding_window']>): SlidingWindowConfig {
  const window: SlidingWindowConfig = {
    type: w.type,
    size: w.size,
    minimumCalls: w.minimum_calls,
    failureRateThreshold: w.failure_rate_threshold,
  };
  if (w.slow_call_duration_ms !== undefined) window.slowCallDurationMs = w.slow_call_duration_ms;
  if (w.slow_call_rate_threshold !== undefined) window.slowCallRateThreshold = w.slow_call_rate_threshold;
  return window;
}

// ---------------------------------------------------------------------------------------------------------
// Error reporting

/** Messages for zod's built-in issues; none of them includes the offending value. */
function errorMessage(issue: { code?: string; input?: unknown; expected?: unknown }): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is required';
    const expected = String(issue.expected);
    const noun = expected === 'record' || expected === 'object' ? 'a mapping' : expected === 'array' ? 'a list' : `a ${expected}`;
    return `must be ${noun}`;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown key (check its spelling)`);
  }
  return [`${formatPath(issue.path)}: ${issue.message}`];
}

/** `routes["claude-sonnet-4-6"].targets[1].base_url`; route keys are always quoted since they are model names. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  path.forEach((segment, index) => {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'symbol') out += `[${String(segment)}]`;
    else if ((index === 1 && path[0] === 'routes') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) {
      out += `[${JSON.stringify(segment)}]`;
    } else out += out === '' ? segment : `.${segment}`;
  });
  return out === '' ? '(top level)' : out;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** A variable's value, or undefined when it is unset or blank. */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function trimSlashes(url: string): string {
  return url.replace(/\/+$/, '');
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
