/**
 * Added cost per call of the resilience layer on the success path (npm run bench:resilience).
 * Each case runs a warm-up, then several timed rounds; the figure is the median ns per call minus the
 * same loop's cost without the protection (the baseline), so only what the layer adds is reported.
 */
import { CircuitBreaker } from '../src/resilience/circuit-breaker/circuit-breaker.js';
import { RetryBudget } from '../src/resilience/retry/retry-budget.js';
import { RetryPolicy } from '../src/resilience/retry/retry-policy.js';
import { retry } from '../src/resilience/retry/retry.js';
import { CallTimers } from '../src/resilience/timers/call-timers.js';

const ITERATIONS = 1_000_000;
const ROUNDS = 7;

let sink = 0;
const work = () => {
  sink = (sink + 1) | 0;
  return sink;
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function timeSync(fn: () => void, iterations = ITERATIONS): number {
  for (let i = 0; i < iterations / 10; i++) fn();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  return median(rounds);
}

async function timeAsync(fn: () => Promise<unknown>, iterations = ITERATIONS / 4): Promise<number> {
  for (let i = 0; i < iterations / 10; i++) await fn();
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn();
    rounds.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  return median(rounds);
}

const breakerConfig = { failureThreshold: 3, successThreshold: 2, timeoutSeconds: 30, halfOpenMaxCalls: 1 };

async function main(): Promise<void> {
  const rows: [string, number][] = [];
  const baseline = timeSync(() => work());

  const breaker = new CircuitBreaker('bench', breakerConfig);
  const breakerNs = timeSync(() => {
    const permit = breaker.acquire();
    work();
    permit.success(0);
  }) - baseline;
  rows.push(['breaker: acquire + success (as used per Claude call)', breakerNs]);
  rows.push(['breaker: executeSync(fn)', timeSync(() => breaker.executeSync(work)) - baseline]);

  const budget = new RetryBudget();
  const policy = new RetryPolicy({ budget });
  const retryNs = timeSync(() => {
    budget.recordCall();
    policy.clock.now();
    work();
  }) - baseline;
  rows.push(['retry: budget.recordCall + start time (success path of a stream)', retryNs]);

  const limits = { connectMs: 30_000, firstTokenMs: 60_000, idleMs: 60_000, totalMs: 600_000 };
  const timersNs = timeSync(() => {
    const timers = new CallTimers(limits, () => undefined);
    timers.start();
    timers.connected();
    timers.content();
    work();
    timers.stop();
  }, ITERATIONS / 4) - baseline;
  rows.push(['timers: start + connected + first content + stop', timersNs]);
  const timers = new CallTimers(limits, () => undefined);
  timers.start();
  timers.connected();
  rows.push(['timers: per streamed chunk (content)', timeSync(() => { timers.content(); work(); }) - baseline]);
  timers.stop();

  const asyncBaseline = await timeAsync(async () => work());
  rows.push(['retry(fn) wrapper around an async call', (await timeAsync(() => retry(async () => work()))) - asyncBaseline]);
  rows.push(['breaker.execute(fn) around an async call', (await timeAsync(() => breaker.execute(async () => work()))) - asyncBaseline]);

  const perCall = breakerNs + retryNs + timersNs;
  console.log(`Resilience overhead on the success path (Node ${process.version}, median of ${ROUNDS} rounds)\n`);
  console.log('| what | added ns per call |');
  console.log('|---|---:|');
  for (const [name, ns] of rows) console.log(`| ${name} | ${Math.max(0, ns).toFixed(0)} |`);
  console.log(`| **breaker + retry + timers per Claude call** | **${perCall.toFixed(0)}** |`);
  console.log(`\n(sink ${sink})`);
}

void main();
