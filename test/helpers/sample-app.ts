/**
 * Talking to the sample app in the end-to-end tests: HTTP calls, polling, its environment,
 * and where it put things.
 */
import { createConnection } from 'node:net';
import type { startSample } from '../../sample/start-sample.js';
import { sleep } from './wait.js';

/** A sample app started in this process. */
export type Sample = Awaited<ReturnType<typeof startSample>>;

export interface Reply<T = any> {
  status: number;
  body: T;
}

/** One HTTP call; JSON in and out. `body: 'raw:...'` sends the text as is. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (typeof body === 'string' && body.startsWith('raw:')) {
    init.body = body.slice(4);
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const response = await fetch(base + path, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: response.status, body: parsed as T };
}

/** Polls `check` until it returns true or `timeoutMs` runs out; returns whether it did. */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

/** Runs `body` with RING_REDIS_NODES set to `value` (or unset), restoring it afterwards. */
export async function withNodesEnv<T>(
  value: string | undefined,
  body: () => Promise<T>,
): Promise<T> {
  const saved = process.env.RING_REDIS_NODES;
  if (value === undefined) delete process.env.RING_REDIS_NODES;
  else process.env.RING_REDIS_NODES = value;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.RING_REDIS_NODES;
    else process.env.RING_REDIS_NODES = saved;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (result: boolean) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1_000, () => done(true)); // Accepted but silent still counts as alive.
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A key (with the given template) that the ring places on `node`, found via /ring/locate. */
export async function keyOn(
  base: string,
  node: string,
  template: (i: number) => string,
  ring: 'aliveNode' | 'totalNode' = 'aliveNode',
): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const key = template(i);
    const { body } = await call(base, 'GET', `/ring/locate/${encodeURIComponent(key)}`);
    if (body[ring] === node) return key;
  }
  throw new Error(`no key placed on ${node} in 200 tries`);
}

/** What a Prometheus scrape of `/metrics` answered: its content type and its samples. */
export interface Scrape {
  contentType: string | null;
  /** `name{label="value",…}` (labels sorted, OpenTelemetry's scope labels left out) → value. */
  samples: Map<string, number>;
  /** Every label value of every sample. */
  labelValues: string[];
}

/** GETs `/metrics` and parses Prometheus' text format. */
export async function scrape(base: string): Promise<Scrape> {
  const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}: ${text}`);
  const samples = new Map<string, number>();
  const labelValues: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)]
      .filter(([, name]) => !name.startsWith('otel_scope_'))
      .map(([, name, value]) => {
        labelValues.push(value);
        return `${name}="${value}"`;
      })
      .sort();
    samples.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return { contentType: response.headers.get('content-type'), samples, labelValues };
}

/** `after − before` of one sample (a missing sample counts 0). */
export function grew(before: Scrape, after: Scrape, sample: string): number {
  return (after.samples.get(sample) ?? 0) - (before.samples.get(sample) ?? 0);
}
