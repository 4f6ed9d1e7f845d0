/**
 * A lean fake of Anthropic's Messages API for load: one fixed latency, no request log, no fault
 * scripting (test/support/fake-anthropic.ts records every request, which would grow without bound
 * over a million-request soak and cost CPU the gateway needs). Runs in its own process:
 *
 *   tsx bench/upstream/fake-upstream.ts <latencyMs> [holdMs]
 *
 * and prints `listening <port>` once ready. `POST /v1/messages` answers after `latencyMs` with a whole
 * message (JSON) or an SSE stream of DELTAS text deltas. A request whose model starts with `hold`
 * streams its first delta, then one delta a second until `holdMs` has passed (open-stream memory test).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { jsonMessage, streamEvents } from './wire.js';

const latencyMs = Number(process.argv[2] ?? '0');
const holdMs = Number(process.argv[3] ?? '15000');

const MODEL = /"model"\s*:\s*"([^"]{1,200})"/;
const STREAM = /"stream"\s*:\s*true/;

const SSE_HEAD = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };
const MODELS = Buffer.from(JSON.stringify({ data: [{ type: 'model', id: 'bench-model', display_name: 'Bench' }], has_more: false, first_id: 'bench-model', last_id: 'bench-model' }));

/** Runs `fn` after the fixed latency; 0 means at once (no timer), so the soak upstream is free. */
function later(fn: () => void): void {
  if (latencyMs > 0) setTimeout(fn, latencyMs);
  else fn();
}

function answerMessages(body: string, res: ServerResponse): void {
  const model = MODEL.exec(body)?.[1] ?? 'bench-model';
  if (!STREAM.test(body)) {
    const json = jsonMessage(model);
    later(() => res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length }).end(json));
    return;
  }
  const events = streamEvents(model);
  later(() => {
    res.writeHead(200, SSE_HEAD);
    if (!model.startsWith('hold')) {
      // Prelude, then the deltas, then the end: three writes, as a real stream arrives in pieces.
      res.write(events.prelude);
      res.write(events.deltas);
      res.end(events.end);
      return;
    }
    res.write(events.prelude);
    res.write(events.delta);
    const started = Date.now();
    const timer = setInterval(() => {
      if (Date.now() - started >= holdMs) {
        clearInterval(timer);
        res.end(events.end);
      } else res.write(events.delta);
    }, 1000);
    res.once('close', () => clearInterval(timer));
  });
}

const server = createServer({ keepAliveTimeout: 60_000 }, (req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': MODELS.length }).end(MODELS);
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/messages') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"not_found_error","message":"not found"}}');
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => answerMessages(Buffer.concat(chunks).toString('utf8'), res));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
