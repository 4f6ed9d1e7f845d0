/**
 * The floor: the least a Node gateway can do — node:http in, an undici Pool out, bytes piped both ways,
 * no parsing, no protection. `/v1/messages` through the project is compared with this.
 *
 *   tsx bench/upstream/passthrough-proxy.ts <upstreamUrl>
 *
 * prints `listening <port>` once ready.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: passthrough-proxy.ts <upstreamUrl>');
const pool = new Pool(upstream, { connections: 128 });

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const headers: Record<string, string> = { 'x-api-key': 'bench-upstream-key' };
  for (const name of ['content-type', 'anthropic-version', 'anthropic-beta']) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  pool
    .request({ method: req.method === 'GET' ? 'GET' : 'POST', path: req.url ?? '/', headers, body: req.method === 'GET' ? null : req })
    .then((response) => {
      const type = response.headers['content-type'];
      res.writeHead(response.statusCode, typeof type === 'string' ? { 'content-type': type } : {});
      // pipe() rather than stream.pipeline(): the latter builds an AbortSignal (and a DOMException) per call.
      response.body.once('error', () => res.destroy());
      response.body.pipe(res);
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void pool.close().then(() => process.exit(0)));
});
