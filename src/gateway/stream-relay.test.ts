import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CircuitBreakerRegistry } from '../resilience/circuit-breaker/registry.js';
import type { BreakerPermit } from '../resilience/circuit-breaker/types.js';
import { CallTimers } from '../resilience/timers/call-timers.js';
import { Cancellation } from './cancellation.js';
import { MessagesGateway } from './messages-gateway.js';
import type { RoutingConfig } from './routing/routing-config.js';
import { ChunkFeed } from './upstream/chunk-feed.js';
import { EventFeed } from './upstream/event-feed.js';

const sse = (event: string, data: object) => Buffer.from(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
const delta = (text: string) => sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });
const stop = sse('message_stop', { type: 'message_stop' });

/** A client connection whose socket buffer is full until `drain()`. */
class SlowClient extends EventEmitter {
  written: string[] = [];
  full = true;
  destroyed = false;
  writableFinished = false;
  write(bytes: Buffer | string): boolean {
    this.written.push(String(bytes));
    return !this.full;
  }
  drain(): void {
    this.full = false;
    this.emit('drain');
  }
}

function relay() {
  const flow = { paused: false, pause: () => void (flow.paused = true), resume: () => void (flow.paused = false) };
  const chunks = new ChunkFeed(flow);
  const outcomes: string[] = [];
  const permit: BreakerPermit = { success: () => outcomes.push('success'), failure: () => outcomes.push('failure'), release: () => outcomes.push('release') };
  const cancel = new Cancellation();
  const timers = new CallTimers({ connectMs: 0, firstTokenMs: 0, idleMs: 0, totalMs: 0 }, () => undefined);
  const gateway = new MessagesGateway({} as RoutingConfig, {} as CircuitBreakerRegistry, { timers: { connectMs: 0, firstTokenMs: 0, idleMs: 0, totalMs: 0 }, delaysMs: [0], maxRetryAfterMs: 0 }, pino({ level: 'silent' }));
  const primed = { buffered: [], pending: [], feed: new EventFeed(chunks), sawStop: false, timers, cancel, permit };
  return { flow, chunks, outcomes, cancel, gateway, primed };
}

describe('MessagesGateway.forward', () => {
  it('pauses the upstream while the client cannot take more and resumes it on drain, losing nothing', async () => {
    const { flow, chunks, outcomes, gateway, primed } = relay();
    const client = new SlowClient();
    const forwarded = gateway.forward(primed, client as unknown as ServerResponse);
    chunks.push(delta('one'));
    expect(flow.paused).toBe(true);
    chunks.push(delta('two')); // already in flight when the pause came
    client.drain();
    expect(flow.paused).toBe(false);
    chunks.push(stop);
    chunks.finish({ kind: 'end' });
    await expect(forwarded).resolves.toBe(true);
    expect(client.written.join('')).toBe(String(Buffer.concat([delta('one'), delta('two'), stop])));
    expect(outcomes).toEqual(['success']);
  });

  it('cancels the upstream call and counts nothing when the client goes away mid-stream', async () => {
    const { chunks, outcomes, cancel, gateway, primed } = relay();
    const client = new SlowClient();
    client.full = false;
    const forwarded = gateway.forward(primed, client as unknown as ServerResponse);
    chunks.push(delta('one'));
    client.destroyed = true;
    client.emit('close');
    await expect(forwarded).resolves.toBe(false);
    expect(cancel.aborted).toBe(true);
    expect(outcomes).toEqual(['release']);
  });

  it('ends a stream that stops without message_stop with a typed error event, counted as a failure', async () => {
    const { chunks, outcomes, gateway, primed } = relay();
    const client = new SlowClient();
    client.full = false;
    const forwarded = gateway.forward(primed, client as unknown as ServerResponse);
    chunks.push(delta('one'));
    chunks.finish({ kind: 'end' });
    await expect(forwarded).resolves.toBe(false);
    expect(client.written.at(-1)).toMatch(/^event: error\ndata: {"type":"error".*ended before message_stop/);
    expect(outcomes).toEqual(['failure']);
  });

  it('relays nothing to a client already gone when the stream is handed over, and cancels the upstream', async () => {
    const { outcomes, cancel, gateway, primed } = relay();
    const client = new SlowClient();
    client.destroyed = true;
    await expect(gateway.forward(primed, client as unknown as ServerResponse)).resolves.toBe(false);
    expect(client.written).toEqual([]);
    expect(cancel.aborted).toBe(true);
    expect(outcomes).toEqual(['release']);
  });
});

