/** Child processes of the bench: each side (upstream, proxy, server) runs in its own, as in production. */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  process: ChildProcess;
  pid: number;
  port: number;
  url: string;
  stop(): Promise<void>;
}

const TSX = ['--import', 'tsx'];

function track(child: ChildProcess, port: number): Child {
  const pid = child.pid;
  if (pid === undefined) throw new Error('child did not start');
  return {
    process: child,
    pid,
    port,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a bench/ TypeScript entry under tsx and waits for its `listening <port>` line. */
export async function startScript(script: string, args: string[]): Promise<Child> {
  const child = spawn(process.execPath, [...TSX, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening (\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited early (${code})`)));
  });
  child.stdout?.resume();
  return track(child, port);
}

/** A port nobody listens on right now (the server is told its port, as in production). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts `node <entry>` with `env`, output to `stdio`, and waits until `readyPath` answers 200. */
export async function startNode(entry: string, env: NodeJS.ProcessEnv, stdio: StdioOptions, nodeArgs: string[] = []): Promise<Child> {
  const port = Number(env.PORT);
  const child = spawn(process.execPath, [...nodeArgs, entry], { env, stdio });
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const url = `http://127.0.0.1:${port}/readyz`;
  for (let i = 0; i < 300; i++) {
    if (exited !== null) throw new Error(`${entry} exited during start-up (code ${exited}); see its log`);
    try {
      const response = await fetch(url);
      await response.arrayBuffer();
      if (response.status === 200) return track(child, port);
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`${entry} did not become ready on port ${port}`);
}
