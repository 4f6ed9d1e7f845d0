import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A routing-file target on a fake upstream (`model` set: it asks the fake for that model instead). */
export function fakeTarget(fakeUrl: string, name: string, options: { model?: string; apiKey?: string } = {}) {
  return { name, base_url: fakeUrl, api_key: options.apiKey ?? `upstream-key-${name}`, ...(options.model ? { model: options.model } : {}) };
}

/** Writes a CONFIG_FILE routing document into `dir` and returns its path. */
export function writeRoutingFile(dir: string, routing: { defaults?: Record<string, unknown>; routes: Record<string, unknown> }): string {
  const file = join(dir, 'routing.json');
  writeFileSync(file, JSON.stringify(routing));
  return file;
}
