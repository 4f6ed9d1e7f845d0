/**
 * Generators and bookkeeping for the HTTP fuzz test (test/fuzz/api-fuzz.test.ts).
 *
 * A generated request is a plain description (`RequestSpec`); the session ids it aims at are chosen
 * when it runs (`World.resolve`), from the sessions that exist at that moment, so the same spec
 * keeps meaning "one of my sessions", "one of alice's protected sessions", "a deleted one"…
 */
import fc from 'fast-check';

export const KEYS = {
  alice: 'alice-key-0123456789',
  bob: 'bob-key-0123456789',
  admin: 'admin-key-0123456789',
} as const;

/** Who the server should take the caller for (`anonymous`: any request it must refuse with 401). */
export type Caller = 'alice' | 'bob' | 'admin' | 'anonymous';

/** Stands for the target session id inside a body; replaced when the request runs. */
export const ID_PLACEHOLDER = '@@SESSION_ID@@';

// ---------------------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------------------

export interface AuthVariant {
  label: string;
  caller: Caller;
  headers: Record<string, string>;
}

const ascii = (maxLength: number) => fc.string({ unit: 'grapheme-ascii', maxLength });

export const authAs = (who: 'alice' | 'bob' | 'admin'): fc.Arbitrary<AuthVariant> => {
  const key = KEYS[who];
  return fc.constantFrom<AuthVariant>(
    { label: `${who}: Bearer`, caller: who, headers: { authorization: `Bearer ${key}` } },
    { label: `${who}: bearer, padded`, caller: who, headers: { authorization: `bearer   ${key}  ` } },
    { label: `${who}: x-api-key`, caller: who, headers: { 'x-api-key': key } },
    { label: `${who}: x-api-key, padded`, caller: who, headers: { 'x-api-key': `  ${key} ` } },
    // An Authorization header that is not a Bearer one is ignored in favour of x-api-key.
    { label: `${who}: Basic + x-api-key`, caller: who, headers: { authorization: 'Basic YWxpY2U6cHc=', 'x-api-key': key } },
  );
};

const anonymousAuth: fc.Arbitrary<AuthVariant> = fc.oneof(
  fc.constantFrom<AuthVariant>(
    { label: 'none', caller: 'anonymous', headers: {} },
    { label: 'empty Bearer', caller: 'anonymous', headers: { authorization: 'Bearer ' } },
    { label: 'Bearer only', caller: 'anonymous', headers: { authorization: 'Bearer' } },
    { label: 'empty authorization', caller: 'anonymous', headers: { authorization: '' } },
    { label: 'empty x-api-key', caller: 'anonymous', headers: { 'x-api-key': '' } },
    { label: 'Basic', caller: 'anonymous', headers: { authorization: 'Basic YWxpY2U6cHc=' } },
    { label: 'two tokens', caller: 'anonymous', headers: { authorization: `Bearer ${KEYS.alice} ${KEYS.bob}` } },
    { label: 'key prefix', caller: 'anonymous', headers: { authorization: `Bearer ${KEYS.alice.slice(0, -1)}` } },
    { label: 'key + suffix', caller: 'anonymous', headers: { authorization: `Bearer ${KEYS.admin}x` } },
    { label: 'upper-case key', caller: 'anonymous', headers: { authorization: `Bearer ${KEYS.bob.toUpperCase()}` } },
    { label: 'name instead of key', caller: 'anonymous', headers: { authorization: 'Bearer alice' } },
    // A Bearer token wins over x-api-key: a wrong one is refused even with a valid x-api-key.
    { label: 'wrong Bearer + valid x-api-key', caller: 'anonymous', headers: { authorization: 'Bearer wrong-key-0000000000', 'x-api-key': KEYS.alice } },
  ),
  ascii(80).map((s): AuthVariant => ({ label: 'garbage authorization', caller: 'anonymous', headers: { authorization: s } })),
  ascii(80).map((s): AuthVariant => ({ label: 'garbage Bearer', caller: 'anonymous', headers: { authorization: `Bearer ${s.replace(/\s/g, '') || 'x'}` } })),
  ascii(80).map((s): AuthVariant => ({ label: 'garbage x-api-key', caller: 'anonymous', headers: { 'x-api-key': s.trim() === '' ? 'x' : s } })),
);

export const authArb: fc.Arbitrary<AuthVariant> = fc.oneof(
  { weight: 40, arbitrary: authAs('alice') },
  { weight: 20, arbitrary: authAs('bob') },
  { weight: 15, arbitrary: authAs('admin') },
  { weight: 25, arbitrary: anonymousAuth },
);

// ---------------------------------------------------------------------------------------------
// Session ids
// ---------------------------------------------------------------------------------------------

/**
 * Which session a request aims at. `own`: one the caller may use; `other`: another key's (not
 * protected); `victim`: one of alice's protected sessions (only for callers that must be refused —
 * for alice and the admin it means `own`, so the protected ones stay untouched); `deleted`: one that
 * was deleted; `random`: a UUID that never existed.
 */
export interface IdChoice {
  pool: 'own' | 'other' | 'victim' | 'deleted' | 'random';
  index: number;
  upper: boolean;
  random: string;
}

export const idChoiceArb: fc.Arbitrary<IdChoice> = fc.record({
  pool: fc.constantFrom<IdChoice['pool']>('own', 'own', 'own', 'own', 'other', 'victim', 'victim', 'deleted', 'random'),
  index: fc.nat(1000),
  upper: fc.boolean(),
  random: fc.uuid(),
});

// ---------------------------------------------------------------------------------------------
// Routes and paths
// ---------------------------------------------------------------------------------------------

export type BodyKind = 'none' | 'chat' | 'config' | 'ref';
export type QueryKind = 'none' | 'list' | 'history';

export interface RouteTemplate {
  method: string;
  path: string;
  body: BodyKind;
  query: QueryKind;
}

const route = (method: string, path: string, body: BodyKind = 'none', query: QueryKind = 'none'): RouteTemplate => ({ method, path, body, query });

/** Every route of the server (README, src/http/routes, src/health, metrics), plus a few that do not exist. */
export const ROUTES: readonly RouteTemplate[] = [
  route('GET', '/'),
  route('GET', '/heartbeat'),
  route('GET', '/livez'),
  route('GET', '/readyz'),
  route('GET', '/health'),
  route('GET', '/health/detailed'),
  route('GET', '/health/stability'),
  route('GET', '/health/alerts'),
  route('GET', '/metrics'),
  route('POST', '/health/circuit-breaker/{name}/reset'),
  route('POST', '/health/fallback-cache/clear'),
  route('POST', '/api/new-session', 'config'),
  route('POST', '/api/new-session', 'config'),
  route('POST', '/api/session-with-config', 'config'),
  route('POST', '/api/session-with-config', 'config'),
  route('PUT', '/api/session/{id}/config', 'config'),
  route('PUT', '/api/session/{id}/config', 'config'),
  route('GET', '/api/session/{id}'),
  route('GET', '/api/session/{id}'),
  route('DELETE', '/api/session/{id}'),
  route('GET', '/api/sessions', 'none', 'list'),
  route('GET', '/api/sessions', 'none', 'list'),
  route('GET', '/api/session-history/{id}', 'none', 'history'),
  route('GET', '/api/session-history/{id}', 'none', 'history'),
  route('POST', '/api/interrupt', 'ref'),
  route('POST', '/api/clear', 'ref'),
  route('POST', '/api/chat', 'chat'),
  route('POST', '/api/chat', 'chat'),
  route('POST', '/api/chat', 'chat'),
  route('GET', '/api/jobs/{id}'),
  route('POST', '/v1/messages', 'chat'),
  route('GET', '/api/{id}'),
  route('GET', '/api'),
  route('GET', '/favicon.ico'),
];

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

/** What replaces an `{id}` segment. `session` is the resolved target id. */
export type IdSegment = { kind: 'session' } | { kind: 'literal'; value: string };

const longSegment = fc.constantFrom(99, 100, 101, 1000, 5000, 20_000).map((n) => 'a'.repeat(n));

const garbageSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    '123e4567-e89b-12d3-a456-42661417400',
    '123e4567-e89b-12d3-a456-4266141740000',
    '{123e4567-e89b-12d3-a456-426614174000}',
    '123e4567e89b12d3a456426614174000',
    'urn:uuid:123e4567-e89b-12d3-a456-426614174000',
    '..',
    '.',
    '%2e%2e',
    '..%2f..%2f..%2fetc%2fpasswd',
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '....//....//etc/passwd',
    '%00',
    '%',
    '%zz',
    '%E0%A4%A',
    '%C0%AE%C0%AE',
    '%ff%fe',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'null',
    'undefined',
    'NaN',
    '-1',
    "'%20OR%201=1--",
    '%22%3E%3Cscript%3E',
    '%F0%9F%92%A9',
    'é',
    '💩',
    '\u202e',
    ';',
    '*',
    ':id',
  ),
  fc.uuid(),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'))),
  longSegment,
);

export const idSegmentArb: fc.Arbitrary<IdSegment> = fc.oneof(
  { weight: 6, arbitrary: fc.constant<IdSegment>({ kind: 'session' }) },
  { weight: 3, arbitrary: garbageSegment.map((value): IdSegment => ({ kind: 'literal', value })) },
);

const breakerName = fc.oneof(
  fc.constantFrom('claude_sdk', 'session_operations', 'claude_degraded', 'alternative:backup', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '%00'),
  garbageSegment,
);

/** How the literal path of the template is bent before its segments are filled. */
export type PathShape = 'plain' | 'trailing-slash' | 'double-slash' | 'upper-case' | 'dot-segment' | 'encoded-slash' | 'extra-segment' | 'prefix-traversal';

export const pathShapeArb: fc.Arbitrary<PathShape> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<PathShape>('plain') },
  { weight: 3, arbitrary: fc.constantFrom<PathShape>('trailing-slash', 'double-slash', 'upper-case', 'dot-segment', 'encoded-slash', 'extra-segment', 'prefix-traversal') },
);

// ---------------------------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------------------------

const numberish = fc.oneof(
  fc.integer({ min: -5, max: 1100 }).map(String),
  fc.constantFrom('', '0', '1', '1000', '1001', 'abc', '1e3', '1e309', '-1e309', 'NaN', 'Infinity', '-0', '0x10', '%205', '5%20', '1.5', '00001', '9007199254740993', '99999999999999999999999', '%00', 'true', '[]', '{}'),
  ascii(20).map((s) => encodeURIComponent(s)),
);

const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64url');

const cursorish = fc.oneof(
  fc.constantFrom('', '%%%', 'a', '-_-_', '====', 'not a cursor', '%00', 'x'.repeat(513), 'x'.repeat(512)),
  fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 })).map(([a, b]) => b64(JSON.stringify([a, b]))),
  fc.tuple(fc.date({ noInvalidDate: true }), fc.uuid()).map(([d, id]) => b64(JSON.stringify([d.toISOString(), id]))),
  fc.jsonValue({ maxDepth: 3 }).map((v) => b64(JSON.stringify(v) ?? 'null')),
  ascii(60).map((s) => encodeURIComponent(s)),
);

const queryPart = (kind: QueryKind): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: kind === 'none' ? 1 : 4, arbitrary: numberish.map((v) => `limit=${v}`) },
    { weight: kind === 'list' ? 4 : 1, arbitrary: cursorish.map((v) => `cursor=${v}`) },
    { weight: kind === 'history' ? 4 : 1, arbitrary: numberish.map((v) => `after=${v}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'limit=1&limit=2',
        'cursor=a&cursor=b',
        'after=1&after=2',
        'limit[]=1',
        'limit[a]=1',
        '__proto__=x',
        '__proto__[limit]=1',
        'constructor[prototype][limit]=1',
        'constructor=1',
        '%%%',
        '%ff=%fe',
        '&&&',
        '=',
        '==',
        'a=b=c',
        'limit',
        '#fragment',
        '?',
      ),
    },
    { weight: 1, arbitrary: fc.tuple(ascii(15), ascii(30)).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`) },
  );

export const queryArb = (kind: QueryKind): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: kind === 'none' ? 6 : 2, arbitrary: fc.constant('') },
    { weight: 4, arbitrary: fc.array(queryPart(kind), { minLength: 1, maxLength: 4 }).map((parts) => `?${parts.join('&')}`) },
  );

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

export interface BodySpec {
  label: string;
  /** undefined: no body at all. Strings may hold ID_PLACEHOLDER. */
  payload: string | Uint8Array | undefined;
}

const json = (label: string) => (value: unknown): BodySpec => ({ label, payload: safeStringify(value) });

export function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return '{"unserialisable":true}';
  }
}

const TOOLS = ['Read', 'Write', 'Edit', 'Bash', 'Grep', 'WebFetch'];

const validConfigFields = {
  system_prompt: fc.string({ maxLength: 200 }),
  model: fc.constantFrom('claude-haiku-4-5', 'claude-sonnet-4-6', 'claude-opus-4-1', 'my.model:v1@x/y'),
  max_tokens: fc.integer({ min: 1, max: 128_000 }),
  temperature: fc.double({ min: 0, max: 1, noNaN: true }),
  allowed_tools: fc.subarray(TOOLS),
  max_turns: fc.integer({ min: 1, max: 1000 }),
  permission_mode: fc.constantFrom('default', 'acceptEdits', 'bypassPermissions', 'plan'),
  cwd: fc.constantFrom('.', 'project', 'a/b/c', './x/../y'),
};

const invalidConfigFields = {
  system_prompt: fc.oneof(fc.constant('x'.repeat(10_001)), fc.constant('\u0000'), fc.jsonValue()),
  model: fc.constantFrom('', ' ', 'bad model', 'a'.repeat(201), 'claude\u0000', 'claude\n', '../../etc'),
  max_tokens: fc.constantFrom(0, -1, 128_001, 1.5, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 2, '10', null, true),
  temperature: fc.constantFrom(-0.0001, 1.0001, '0.5', null, [0.5], 1e-320),
  allowed_tools: fc.oneof(fc.constant(['rm -rf /']), fc.constant(Array.from({ length: 101 }, () => 'Read')), fc.constant('Read'), fc.array(fc.jsonValue(), { maxLength: 3 })),
  max_turns: fc.constantFrom(0, 1001, 2.5, -3, '1'),
  permission_mode: fc.constantFrom('DEFAULT', 'root', '', 'plan ', null),
  cwd: fc.constantFrom('', '/', '/etc', '..', '../escape', 'a/../../..', 'a\u0000b', 'x'.repeat(4097), '/tmp', '~'),
};

const mixedField = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 6, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 2, arbitrary: invalid }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }) });

export const validConfigArb = fc.record(validConfigFields, { requiredKeys: [] });

const configArb = fc.oneof(
  { weight: 3, arbitrary: validConfigArb },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        system_prompt: mixedField(validConfigFields.system_prompt, invalidConfigFields.system_prompt),
        model: mixedField(validConfigFields.model, invalidConfigFields.model),
        max_tokens: mixedField(validConfigFields.max_tokens, invalidConfigFields.max_tokens),
        temperature: mixedField(validConfigFields.temperature, invalidConfigFields.temperature),
        allowed_tools: mixedField(validConfigFields.allowed_tools, invalidConfigFields.allowed_tools),
        max_turns: mixedField(validConfigFields.max_turns, invalidConfigFields.max_turns),
        permission_mode: mixedField(validConfigFields.permission_mode, invalidConfigFields.permission_mode),
        cwd: mixedField(validConfigFields.cwd, invalidConfigFields.cwd),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.tuple(validConfigArb, fc.dictionary(ascii(12), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 3 })).map(([c, extra]) => ({ ...extra, ...c })) },
);

const sessionIdValue = fc.oneof(
  { weight: 8, arbitrary: fc.constant<unknown>(ID_PLACEHOLDER) },
  { weight: 1, arbitrary: fc.constant<unknown>(`  ${ID_PLACEHOLDER}  `) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, '', 'null', 0, [ID_PLACEHOLDER], { id: ID_PLACEHOLDER }, '../../etc/passwd', 'x'.repeat(10_000)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

const messageValue = fc.oneof(
  { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 80 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('', ' ', '\n\t ', '\u0000', '\ud800', '\udfff\ud800', '\u200b', '\ufeff', '💩'.repeat(10), null, 42, true, ['hi'], { text: 'hi' }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

const chatValue = fc.oneof(
  { weight: 4, arbitrary: fc.record({ message: messageValue, session_id: sessionIdValue }, { requiredKeys: ['message'] }) },
  { weight: 2, arbitrary: fc.record({ message: fc.string({ minLength: 1, maxLength: 60 }).filter((s) => s.trim() !== ''), session_id: fc.constant(ID_PLACEHOLDER) }) },
  { weight: 1, arbitrary: fc.record({ message: messageValue, session_id: sessionIdValue, extra: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }) },
);

const refValue = fc.oneof(
  { weight: 5, arbitrary: fc.record({ session_id: sessionIdValue }) },
  { weight: 1, arbitrary: fc.record({ session_id: sessionIdValue, message: messageValue }, { requiredKeys: [] }) },
);

const validBody = (kind: BodyKind): fc.Arbitrary<BodySpec> => {
  switch (kind) {
    case 'chat':
      return chatValue.map(json('chat body'));
    case 'config':
      return configArb.map(json('config body'));
    case 'ref':
      return refValue.map(json('session ref body'));
    case 'none':
      return fc.constant<BodySpec>({ label: 'no body', payload: undefined });
  }
};

/** Built once, on first use: a handful of bodies at and past the size limits. */
let hugeBodiesCache: BodySpec[] | undefined;
export function hugeBodies(): BodySpec[] {
  if (hugeBodiesCache) return hugeBodiesCache;
  const MiB = 1_048_576;
  const depth = 100_000;
  hugeBodiesCache = [
    { label: 'message of 50,000 chars (limit)', payload: JSON.stringify({ message: 'x'.repeat(50_000) }) },
    { label: 'message of 50,001 chars', payload: JSON.stringify({ message: 'x'.repeat(50_001) }) },
    { label: 'message of 50,000 emoji (limit in code points)', payload: JSON.stringify({ message: '😀'.repeat(50_000) }) },
    { label: 'message of 50,001 emoji', payload: JSON.stringify({ message: '😀'.repeat(50_001) }) },
    { label: 'message of 50,000 combining marks', payload: JSON.stringify({ message: `a${'\u0301'.repeat(49_999)}` }) },
    { label: 'system_prompt of 10,000 chars', payload: JSON.stringify({ system_prompt: 'p'.repeat(10_000) }) },
    { label: 'system_prompt of 10,001 chars', payload: JSON.stringify({ system_prompt: 'p'.repeat(10_001) }) },
    { label: 'body of exactly 1 MiB', payload: JSON.stringify({ message: 'y'.repeat(MiB - 14) }) },
    { label: 'body of 1 MiB + 1', payload: JSON.stringify({ message: 'y'.repeat(MiB - 13) }) },
    { label: 'body of 3 MiB', payload: JSON.stringify({ message: 'z'.repeat(3 * MiB) }) },
    { label: 'session_id of 500,000 chars', payload: JSON.stringify({ session_id: 'a'.repeat(500_000) }) },
    { label: 'array of 200,000 numbers', payload: `[${'1,'.repeat(199_999)}1]` },
    { label: 'object with 50,000 keys', payload: JSON.stringify(Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]))) },
    { label: `array nested ${depth} deep`, payload: '['.repeat(depth) + ']'.repeat(depth) },
    { label: `object nested ${depth / 2} deep`, payload: '{"a":'.repeat(depth / 2) + '1' + '}'.repeat(depth / 2) },
    { label: 'message nested 400,000 deep', payload: `{"message":${'['.repeat(400_000)}${']'.repeat(400_000)}}` },
    { label: 'unterminated deep nesting', payload: '['.repeat(500_000) },
  ];
  return hugeBodiesCache;
}

const malformedBody: fc.Arbitrary<BodySpec> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map(json('random JSON value')),
  fc.anything({ maxDepth: 3, withNullPrototype: true, withObjectString: true }).map(json('fc.anything as JSON')),
  fc.constantFrom<BodySpec>(
    { label: 'empty', payload: '' },
    { label: 'whitespace', payload: ' \n\t ' },
    { label: 'null', payload: 'null' },
    { label: 'true', payload: 'true' },
    { label: 'number', payload: '123' },
    { label: 'string', payload: '"hello"' },
    { label: 'empty array', payload: '[]' },
    { label: 'empty object', payload: '{}' },
    { label: 'array of body', payload: `[{"message":"hi","session_id":"${ID_PLACEHOLDER}"}]` },
    { label: '__proto__ message', payload: '{"__proto__":{"message":"hi"}}' },
    { label: 'message + __proto__', payload: '{"message":"hi","__proto__":{"session_id":null}}' },
    { label: 'ref + __proto__', payload: `{"session_id":"${ID_PLACEHOLDER}","__proto__":{"x":1}}` },
    { label: 'constructor.prototype', payload: '{"constructor":{"prototype":{"message":"hi"}}}' },
    { label: 'message + constructor', payload: '{"message":"hi","constructor":{"prototype":{"polluted":true}}}' },
    { label: 'config + __proto__', payload: '{"system_prompt":"x","__proto__":{"max_tokens":5}}' },
    { label: 'escaped __proto__ key', payload: '{"\\u005f_proto__":{"message":"hi"}}' },
    { label: 'duplicate keys', payload: '{"message":"a","message":"b"}' },
    { label: 'duplicate session_id', payload: `{"message":"a","session_id":"${ID_PLACEHOLDER}","session_id":null}` },
    { label: 'BOM', payload: '\ufeff{"message":"hi"}' },
    { label: 'lone surrogate escape', payload: '{"message":"\\ud800 lone"}' },
    { label: 'NUL escape', payload: '{"message":"a\\u0000b"}' },
    { label: 'NUL in system prompt', payload: '{"system_prompt":"a\\u0000b"}' },
    { label: 'huge exponent', payload: '{"max_tokens":1e400}' },
    { label: 'negative zero', payload: '{"temperature":-0}' },
    { label: 'trailing comma', payload: '{"message":"hi",}' },
    { label: 'single quotes', payload: "{'message':'hi'}" },
    { label: 'comment', payload: '{"message":"hi" /* c */}' },
    { label: 'NaN literal', payload: '{"max_tokens":NaN}' },
    { label: 'two documents', payload: '{"message":"a"}{"message":"b"}' },
    { label: 'form encoded', payload: `message=hi&session_id=${ID_PLACEHOLDER}` },
    { label: 'xml', payload: '<?xml version="1.0"?><message>hi</message>' },
    { label: 'NUL bytes', payload: '\u0000\u0000\u0000' },
  ),
  fc.tuple(fc.oneof(chatValue, configArb, refValue), fc.nat()).map(([value, cut]): BodySpec => {
    const text = safeStringify(value);
    return { label: 'truncated JSON', payload: text.slice(0, text.length > 1 ? cut % (text.length - 1) : 0) };
  }),
  fc.uint8Array({ maxLength: 200 }).map((bytes): BodySpec => ({ label: 'random bytes', payload: bytes })),
  fc.uint8Array({ minLength: 1, maxLength: 40 }).map(
    (bytes): BodySpec => ({ label: 'non-UTF-8 bytes inside a JSON string', payload: Buffer.concat([Buffer.from('{"message":"'), Buffer.from(bytes.map((b) => b | 0x80)), Buffer.from('"}')]) }),
  ),
  fc.constantFrom<BodySpec>(
    { label: 'overlong UTF-8', payload: Buffer.from([0x7b, 0x22, 0xc0, 0xae, 0x22, 0x3a, 0x31, 0x7d]) },
    { label: 'UTF-16LE JSON', payload: Buffer.from('{"message":"hi"}', 'utf16le') },
    { label: 'latin1 é', payload: Buffer.from('{"message":"caf\xe9"}', 'latin1') },
  ),
  fc.integer({ min: 10, max: 2000 }).map((depth): BodySpec => ({ label: `nested ${depth} deep`, payload: `{"message":"hi","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}` })),
  fc.integer({ min: 10, max: 2000 }).map((depth): BodySpec => ({ label: `array nested ${depth} deep`, payload: `${'['.repeat(depth)}${']'.repeat(depth)}` })),
);

export const bodyArb = (kind: BodyKind): fc.Arbitrary<BodySpec> =>
  fc.oneof(
    { weight: 12, arbitrary: validBody(kind) },
    { weight: 3, arbitrary: validBody(kind === 'none' ? 'chat' : 'none') },
    { weight: 8, arbitrary: malformedBody },
    { weight: 1, arbitrary: fc.nat().map((i) => hugeBodies()[i % hugeBodies().length] as BodySpec) },
  );

// ---------------------------------------------------------------------------------------------
// Other headers
// ---------------------------------------------------------------------------------------------

/** `undefined`: no content-type header at all. */
export const contentTypeArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 10, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom<string | undefined>(
      undefined,
      'application/json; charset=utf-8',
      'application/json;charset=UTF-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/json; boundary=x; charset="utf-8"',
      'application/jsonx',
      'application/json-patch+json',
      'application/vnd.api+json',
      'text/json',
      'text/plain',
      'text/plain; charset=utf-8',
      'text/event-stream',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=----x',
      'application/octet-stream',
      'application/xml',
      '*/*',
      '',
      ' ',
      ';',
      ';;;',
      'bogus',
      'application/',
      '/json',
      'application/json;',
      'application/json; charset',
      'application/json; =',
      '__proto__',
    ),
  },
  { weight: 1, arbitrary: ascii(40) },
);

const requestIdArb: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.stringMatching(/^[\w.:-]{1,128}$/) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', 'a'.repeat(128), 'a'.repeat(129), 'a'.repeat(5000), 'bad id with spaces', 'id\u00e9', '../../etc', '<script>', 'x,y', '__proto__', 'constructor', '0'),
  },
  { weight: 1, arbitrary: ascii(60) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x20 : c)), maxLength: 40 }) },
);

const extraHeadersArb: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    accept: fc.constantFrom('application/json', 'text/plain', 'application/openmetrics-text; version=1.0.0', 'text/event-stream', '*/*', '', 'bogus', 'text/html;q=0.1, */*;q=0'),
    origin: fc.constantFrom('https://app.example.com', 'https://evil.example.com', 'null', ''),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', '::1', 'garbage', '1.2.3.4, 5.6.7.8', ''),
    'access-control-request-method': fc.constantFrom('POST', 'DELETE', 'FOO'),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', 'bogus'),
    'content-encoding': fc.constantFrom('gzip', 'deflate', 'bogus'),
    'content-length': fc.constantFrom('0', '-1', 'abc', '99999999', '1'),
  },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------------------------------------
// Whole requests
// ---------------------------------------------------------------------------------------------

export interface RequestSpec {
  route: RouteTemplate;
  method: string;
  shape: PathShape;
  idSegment: IdSegment;
  name: string;
  query: string;
  auth: AuthVariant;
  id: IdChoice;
  contentType: string | undefined;
  requestId: string | undefined;
  extraHeaders: Record<string, string>;
  body: BodySpec;
}

const methodFor = (route: RouteTemplate) =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) });

const validQuery = (kind: QueryKind): fc.Arbitrary<string> => {
  switch (kind) {
    case 'none':
      return fc.constant('');
    case 'list':
      return fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }).map((limit) => (limit === undefined ? '' : `?limit=${limit}`));
    case 'history':
      return fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 20 })).map(([limit, after]) => `?limit=${limit}&after=${after}`);
  }
};

/** A request a well-behaved client would send (only the session it aims at varies): keeps sessions, chats and deletes flowing between the junk. */
const cleanRequestArbFor = (routes: readonly RouteTemplate[], auth: fc.Arbitrary<AuthVariant>): fc.Arbitrary<RequestSpec> =>
  fc.constantFrom(...routes).chain((r) =>
    fc.record({
      route: fc.constant(r),
      method: fc.constant(r.method),
      shape: fc.constant<PathShape>('plain'),
      idSegment: fc.constant<IdSegment>({ kind: 'session' }),
      name: fc.constantFrom('claude_sdk', 'session_operations'),
      query: validQuery(r.query),
      // The management routes answer the admin key only.
      auth: r.path.startsWith('/health/') && r.method === 'POST' ? authAs('admin') : auth,
      id: idChoiceArb,
      contentType: fc.constant('application/json'),
      requestId: requestIdArb,
      extraHeaders: fc.constant({}),
      body: validBody(r.body),
    }),
  );

const messyRequestArbFor = (routes: readonly RouteTemplate[], auth: fc.Arbitrary<AuthVariant>): fc.Arbitrary<RequestSpec> => fc.constantFrom(...routes).chain((r) =>
  fc.record({
    route: fc.constant(r),
    method: methodFor(r),
    shape: pathShapeArb,
    idSegment: idSegmentArb,
    name: breakerName,
    query: queryArb(r.query),
    auth,
    id: idChoiceArb,
    contentType: contentTypeArb,
    requestId: requestIdArb,
    extraHeaders: fc.oneof({ weight: 6, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extraHeadersArb }),
    body: bodyArb(r.body),
  }),
);

const keyedAuth = fc.oneof({ weight: 5, arbitrary: authAs('alice') }, { weight: 3, arbitrary: authAs('bob') }, { weight: 2, arbitrary: authAs('admin') });

/** Two thirds junk, one third well-formed requests from a valid key. */
export const requestArbFor = (routes: readonly RouteTemplate[], auth: fc.Arbitrary<AuthVariant> = authArb): fc.Arbitrary<RequestSpec> =>
  fc.oneof({ weight: 2, arbitrary: messyRequestArbFor(routes, auth) }, { weight: 1, arbitrary: cleanRequestArbFor(routes, auth === authArb ? keyedAuth : auth) });

export const requestArb: fc.Arbitrary<RequestSpec> = requestArbFor(ROUTES);

/** Routes that touch one session, for concurrent batches aimed at the same session. */
export const RACE_ROUTES: readonly RouteTemplate[] = ROUTES.filter((r) => r.path.includes('{id}') || r.body === 'chat' || r.body === 'ref' || r.path === '/api/new-session');

/** Requests bob may make to alice's sessions: well formed, so the only possible refusal is "not found". */
export interface AttackSpec {
  template: 'get' | 'history' | 'config' | 'delete' | 'interrupt' | 'clear' | 'chat';
  auth: AuthVariant;
  victim: number;
  upper: boolean;
  config: Record<string, unknown>;
  message: string;
  limit: number;
  after: number;
}

export const attackArb: fc.Arbitrary<AttackSpec> = fc.record({
  template: fc.constantFrom<AttackSpec['template']>('get', 'history', 'config', 'delete', 'interrupt', 'clear', 'chat'),
  auth: authAs('bob'),
  victim: fc.nat(),
  upper: fc.boolean(),
  config: validConfigArb,
  message: fc.string({ minLength: 1, maxLength: 60 }).filter((s) => s.trim() !== ''),
  limit: fc.integer({ min: 1, max: 1000 }),
  after: fc.integer({ min: 0, max: 100 }),
});

// ---------------------------------------------------------------------------------------------
// Bookkeeping: which sessions exist, and whose they are
// ---------------------------------------------------------------------------------------------

export type Owner = 'alice' | 'bob' | 'admin';

export class World {
  /** Every session id ever seen (created in setup or by a fuzzed request), with its owner. */
  readonly owner = new Map<string, Owner>();
  readonly setup = new Set<string>();
  readonly created = new Set<string>();
  readonly deleted = new Set<string>();
  /** Alice's sessions that only callers who must be refused ever aim at. */
  readonly protectedIds: string[] = [];

  addSetup(id: string, owner: Owner, isProtected = false): void {
    this.owner.set(id, owner);
    this.setup.add(id);
    if (isProtected) this.protectedIds.push(id);
  }

  addCreated(id: string, owner: Owner): void {
    if (this.owner.has(id)) return;
    this.owner.set(id, owner);
    this.created.add(id);
  }

  isLive(id: string): boolean {
    return this.owner.has(id) && !this.deleted.has(id);
  }

  /** (setup ∪ created) \ deleted, optionally for one owner. */
  expected(owner?: Owner): string[] {
    return [...this.owner.entries()].filter(([id, o]) => !this.deleted.has(id) && (owner === undefined || o === owner)).map(([id]) => id);
  }

  private pool(filter: (id: string, owner: Owner) => boolean): string[] {
    const ids: string[] = [];
    for (const [id, o] of this.owner) if (!this.deleted.has(id) && !this.protectedIds.includes(id) && filter(id, o)) ids.push(id);
    return ids;
  }

  /** The session id a request aims at, for this caller (see IdChoice). */
  resolve(caller: Caller, choice: IdChoice): string {
    const pick = (ids: string[]) => (ids.length === 0 ? choice.random : (ids[choice.index % ids.length] as string));
    let id: string;
    let pool = choice.pool;
    if (pool === 'victim' && (caller === 'alice' || caller === 'admin')) pool = 'own';
    if (pool === 'other' && caller === 'admin') pool = 'own';
    switch (pool) {
      case 'own':
        id = pick(this.pool((_id, o) => caller === 'admin' || o === caller));
        break;
      case 'other':
        id = pick(this.pool((_id, o) => o !== caller));
        break;
      case 'victim':
        id = pick(this.protectedIds);
        break;
      case 'deleted':
        id = pick([...this.deleted]);
        break;
      case 'random':
        id = choice.random;
        break;
    }
    return choice.upper ? id.toUpperCase() : id;
  }
}

// ---------------------------------------------------------------------------------------------
// From spec to inject options
// ---------------------------------------------------------------------------------------------

export interface BuiltRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload: string | Buffer | undefined;
  caller: Caller;
  authLabel: string;
  bodyLabel: string;
  /** The session id (lower-case) the request aims at in its path or body, if any. */
  target: string | undefined;
}

function shapePath(path: string, shape: PathShape): string {
  switch (shape) {
    case 'plain':
      return path;
    case 'trailing-slash':
      return `${path}/`;
    case 'double-slash':
      return path.replace(/\//g, '//');
    case 'upper-case':
      return path.toUpperCase().replace('{ID}', '{id}').replace('{NAME}', '{name}');
    case 'dot-segment':
      return path.replace(/^\/([^/]*)/, '/$1/./');
    case 'encoded-slash':
      return path.replace(/\/(?=[^/]*$)/, '%2F');
    case 'extra-segment':
      return `${path}/extra`;
    case 'prefix-traversal':
      return `/api/..${path}`;
  }
}

export function buildRequest(spec: RequestSpec, world: World): BuiltRequest {
  const caller = spec.auth.caller;
  const id = world.resolve(caller, spec.id);
  let usesId = false;
  let path = shapePath(spec.route.path, spec.shape);
  if (path.includes('{id}')) {
    if (spec.idSegment.kind === 'session') {
      usesId = true;
      path = path.replace('{id}', id);
    } else {
      path = path.replace('{id}', spec.idSegment.value);
    }
  }
  path = path.replace('{name}', spec.name);

  let payload: string | Buffer | undefined;
  const raw = spec.body.payload;
  if (typeof raw === 'string') {
    // Only the routes whose body names a session aim at it through the body.
    payload = raw.split(ID_PLACEHOLDER).join(id);
    if (raw.includes(ID_PLACEHOLDER) && (spec.route.body === 'chat' || spec.route.body === 'ref') && bodyNamesSession(payload, id)) usesId = true;
  } else if (raw !== undefined) {
    payload = Buffer.from(raw);
  }

  const headers: Record<string, string> = { ...spec.extraHeaders, ...spec.auth.headers };
  if (spec.contentType !== undefined) headers['content-type'] = spec.contentType;
  if (spec.requestId !== undefined) headers['x-request-id'] = spec.requestId;
  return {
    method: spec.method,
    url: `${path}${spec.query}`,
    headers,
    payload,
    caller,
    authLabel: spec.auth.label,
    bodyLabel: spec.body.label,
    target: usesId ? id.toLowerCase() : undefined,
  };
}

export function buildAttack(spec: AttackSpec, world: World): BuiltRequest {
  const victim = world.protectedIds[spec.victim % world.protectedIds.length] as string;
  const id = spec.upper ? victim.toUpperCase() : victim;
  const base = { headers: { ...spec.auth.headers }, caller: spec.auth.caller, authLabel: spec.auth.label, target: victim, payload: undefined as string | undefined };
  const withBody = (method: string, url: string, body: unknown): BuiltRequest => ({
    ...base,
    method,
    url,
    headers: { ...base.headers, 'content-type': 'application/json' },
    payload: JSON.stringify(body),
    bodyLabel: 'well-formed attack body',
  });
  switch (spec.template) {
    case 'get':
      return { ...base, method: 'GET', url: `/api/session/${id}`, bodyLabel: 'no body' };
    case 'history':
      return { ...base, method: 'GET', url: `/api/session-history/${id}?limit=${spec.limit}&after=${spec.after}`, bodyLabel: 'no body' };
    case 'delete':
      return { ...base, method: 'DELETE', url: `/api/session/${id}`, bodyLabel: 'no body' };
    case 'config':
      return withBody('PUT', `/api/session/${id}/config`, spec.config);
    case 'interrupt':
      return withBody('POST', '/api/interrupt', { session_id: id });
    case 'clear':
      return withBody('POST', '/api/clear', { session_id: id });
    case 'chat':
      return withBody('POST', '/api/chat', { message: spec.message, session_id: id });
  }
}

/** A readable, bounded description of a request for failure messages. */
export function describeRequest(req: BuiltRequest): string {
  const payload =
    req.payload === undefined
      ? '(none)'
      : typeof req.payload === 'string'
        ? req.payload.length > 400
          ? `${JSON.stringify(req.payload.slice(0, 400))}… (${req.payload.length} chars)`
          : JSON.stringify(req.payload)
        : `<Buffer ${req.payload.subarray(0, 200).toString('hex')}${req.payload.length > 200 ? '…' : ''}> (${req.payload.length} bytes)`;
  const url = req.url.length > 300 ? `${req.url.slice(0, 300)}… (${req.url.length} chars)` : req.url;
  const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, v.length > 200 ? `${v.slice(0, 200)}… (${v.length} chars)` : v]));
  return [`${req.method} ${url}`, `  caller: ${req.caller} (${req.authLabel})`, `  headers: ${JSON.stringify(headers)}`, `  body [${req.bodyLabel}]: ${payload}`].join('\n');
}

/** Whether the body, read as JSON.parse reads it (the last duplicate key wins), names this session. */
function bodyNamesSession(payload: string, id: string): boolean {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (typeof parsed !== 'object' || parsed === null) return false;
    const sessionId = (parsed as { session_id?: unknown }).session_id;
    return typeof sessionId === 'string' && sessionId.toLowerCase() === id.toLowerCase();
  } catch {
    // Unparsable bodies are refused before any session is touched.
    return false;
  }
}
