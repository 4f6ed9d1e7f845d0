/**
 * A small, strict parser for the Prometheus text exposition (format 0.0.4), for tests: it throws on any
 * line it does not understand, so "it parses" means every line is well-formed.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Metric family name → type, from the `# TYPE` lines. */
  types: Map<string, string>;
  samples: Sample[];
}

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (\\S+))?$`);
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;
const SUFFIXES = ['', '_bucket', '_sum', '_count'];

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition must end with a newline');
  lines.pop();

  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const comment = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!comment) throw new Error(`bad comment, ${where}`);
      const [, keyword, name = '', rest = ''] = comment;
      if (keyword === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown type ${rest}, ${where}`);
        if (types.has(name)) throw new Error(`duplicate TYPE, ${where}`);
        types.set(name, rest);
      }
      return;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`bad sample, ${where}`);
    const [, name = '', labelText = '', valueText = ''] = match;
    const value = parseValue(valueText);
    if (value === undefined) throw new Error(`bad value, ${where}`);
    if (!SUFFIXES.some((suffix) => name.endsWith(suffix) && types.has(name.slice(0, name.length - suffix.length)))) {
      throw new Error(`sample of an undeclared metric, ${where}`);
    }
    samples.push({ name, labels: parseLabels(labelText, where), value });
  });
  return { types, samples };
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const match = LABEL.exec(text);
    if (!match) throw new Error(`bad labels, ${where}`);
    const [, key = '', value = ''] = match;
    if (key in labels) throw new Error(`duplicate label ${key}, ${where}`);
    labels[key] = value.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function parseValue(text: string): number | undefined {
  // Prometheus parses values with Go's ParseFloat, which takes NaN / Inf in any case (prom-client writes `Nan`).
  const lower = text.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  const value = Number(text);
  return text.trim() !== '' && !Number.isNaN(value) ? value : undefined;
}

/** The value of the one sample with this name and these labels (a subset match); throws if not exactly one. */
export function sampleValue(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exposition.samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
  if (found.length !== 1) throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}
