/**
 * Section 7: what the ecosystem pieces cost, over 3 local nodes, 64 in flight, interleaved:
 *
 * - the Keyv store's `get` against `RingDict.get` of the same 100-byte values (goal: the store
 *   costs ≤ 5 %), with `Keyv#get` over the store for scale;
 * - the msgpack codec against the json codec, `get` and `set` of a small object with a Date;
 * - compression (gzip, level 1) of a 60 KB JSON document against none: bytes stored, and
 *   set + get at 1 in flight; and the CPU time of gzip levels 1 and 6 on that document.
 */
import { gzipSync } from 'node:zlib';
import Keyv from 'keyv';
import { RingDict } from '../lib/index.js';
import { RingKeyvStore } from '../lib/keyv/index.js';
import {
  interleavedRounds,
  medianLoad,
  microsPerCall,
  pairedRatio,
  type BenchConfig,
  type LoadResult,
} from './measure.js';
import {
  LOAD_DETAIL_HEADER,
  loadDetail,
  rate,
  sig,
  textTable,
  times,
  verdict,
  type Row,
  type SectionResult,
} from './report.js';
import { redisFleet, ringNodes } from './servers.js';
import { jsonObjectOf } from './throughput.bench.js';

const KEY_SPACE = 10_000;
const IN_FLIGHT = 64;
/** The Keyv store may cost at most this much over RingDict.get. */
const KEYV_GOAL = 0.95;

/** A product list of about 60 KB of JSON: repeated field names, varied words and numbers. */
export function bigDocument(): { items: Record<string, unknown>[] } {
  const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu'.split(' ');
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = () => words[Math.floor(random() * words.length)];
  const items = Array.from({ length: 400 }, (_, id) => ({
    id,
    sku: `SKU-${Math.floor(random() * 1e8)}`,
    name: `${pick()} ${pick()} ${pick()} ${pick()}`,
    price: Math.round(random() * 10_000) / 100,
    tags: [pick(), pick()],
    stock: Math.floor(random() * 100),
    updatedAt: new Date(1.7e12 + random() * 1e10).toISOString(),
  }));
  return { items };
}

function keys(prefix: string): string[] {
  return Array.from({ length: KEY_SPACE }, (_, i) => `${prefix}${i}`);
}

export async function benchEcosystem(config: BenchConfig): Promise<SectionResult> {
  const roundMs = config.quick ? 200 : 600;
  const rounds = config.quick ? 3 : 7;
  const fleet = await redisFleet(3);
  const nodes = ringNodes(fleet.value);
  const json = new RingDict<unknown>({ nodes, prefix: 'json:' });
  const msgpack = new RingDict<unknown>({ nodes, prefix: 'mp:', codec: 'msgpack' });
  const plain = new RingDict<unknown>({ nodes, prefix: 'plain:' });
  const gzip = new RingDict<unknown>({ nodes, prefix: 'gz:', compression: { threshold: 1024 } });
  try {
    const rows: Row[] = [];
    const detail: string[][] = [];
    rows.push(...(await keyvRows(json, roundMs, rounds, detail)));
    rows.push(...(await codecRows(json, msgpack, roundMs, rounds, detail)));
    rows.push(...(await compressionRows(plain, gzip, roundMs, rounds, detail)));
    console.log(textTable(LOAD_DETAIL_HEADER, detail));
    return { rows };
  } finally {
    await Promise.all([json, msgpack, plain, gzip].map((dict) => dict.close()));
    await fleet.stop();
  }
}

/** The store's get, the dict's get and Keyv's get over the store, of the same entries. */
async function keyvRows(
  dict: RingDict<unknown>,
  roundMs: number,
  rounds: number,
  detail: string[][],
): Promise<Row[]> {
  const store = new RingKeyvStore(dict as RingDict<unknown, unknown>);
  const keyv = new Keyv({ store, namespace: 'keyv' });
  const dictKeys = keys('d');
  const storeKeys = keys('keyv:s');
  const keyvKeys = keys('s');
  const value = jsonObjectOf(100);
  for (let i = 0; i < KEY_SPACE; i += 500) {
    await Promise.all(
      dictKeys
        .slice(i, i + 500)
        .map((key, j) => Promise.all([dict.set(key, value), keyv.set(keyvKeys[i + j], value)])),
    );
  }
  const ops = [
    (r: number) => dict.get(dictKeys[r % KEY_SPACE]),
    (r: number) => store.get(storeKeys[r % KEY_SPACE]),
    (r: number) => keyv.get(keyvKeys[r % KEY_SPACE]),
  ];
  const [d, s, k] = await interleavedRounds(ops, IN_FLIGHT, rounds, roundMs, roundMs);
  addDetail(detail, 'RingDict.get', d);
  addDetail(detail, 'RingKeyvStore.get', s);
  addDetail(detail, 'Keyv#get over the store', k);
  const baseline = `RingDict.get (json, 100 B), 64 in flight: ${rate(medianLoad(d).perSecond)}`;
  const storeRatio = pairedRatio(
    s.map((x) => x.perSecond),
    d.map((x) => x.perSecond),
  );
  return [
    {
      item: 7,
      what: 'RingKeyvStore.get, 3 nodes, 64 in flight',
      ours: rate(medianLoad(s).perSecond),
      baseline,
      ratio: times(storeRatio),
      goal: `≥ ${KEYV_GOAL}× (≤ 5 % cost)`,
      verdict: verdict(storeRatio >= KEYV_GOAL),
    },
    {
      item: 7,
      what: '(for scale) Keyv#get over RingKeyvStore, 64 in flight',
      ours: rate(medianLoad(k).perSecond),
      baseline,
      ratio: times(
        pairedRatio(
          k.map((x) => x.perSecond),
          d.map((x) => x.perSecond),
        ),
      ),
      goal: 'not a goal',
      verdict: 'info',
    },
  ];
}

/** msgpack against json: get and set of a small object holding a Date. */
async function codecRows(
  json: RingDict<unknown>,
  msgpack: RingDict<unknown>,
  roundMs: number,
  rounds: number,
  detail: string[][],
): Promise<Row[]> {
  const value = { ...jsonObjectOf(100), at: new Date(1.7e12), tags: ['a', 'b', 'c'] };
  const k = keys('c');
  for (let i = 0; i < KEY_SPACE; i += 500) {
    await Promise.all(
      k.slice(i, i + 500).flatMap((key) => [json.set(key, value), msgpack.set(key, value)]),
    );
  }
  const rows: Row[] = [];
  for (const op of ['get', 'set'] as const) {
    const run = (dict: RingDict<unknown>) =>
      op === 'get'
        ? (r: number) => dict.get(k[r % KEY_SPACE])
        : (r: number) => dict.set(k[r % KEY_SPACE], value);
    const [m, j] = await interleavedRounds(
      [run(msgpack), run(json)],
      IN_FLIGHT,
      rounds,
      roundMs,
      roundMs,
    );
    addDetail(detail, `msgpack ${op}`, m);
    addDetail(detail, `json ${op}`, j);
    rows.push({
      item: 7,
      what: `codec msgpack ${op}, object with a Date, 64 in flight`,
      ours: `${rate(medianLoad(m).perSecond)}, ${sig(medianLoad(m).cpuMicrosPerOp)} µs CPU/op`,
      baseline: `json ${op}: ${rate(medianLoad(j).perSecond)}, ${sig(medianLoad(j).cpuMicrosPerOp)} µs CPU/op`,
      ratio: times(
        pairedRatio(
          m.map((x) => x.perSecond),
          j.map((x) => x.perSecond),
        ),
      ),
      goal: 'not a goal',
      verdict: 'info',
    });
  }
  return rows;
}

/** gzip level 1 over a 60 KB JSON document against none: size, set + get, and CPU. */
async function compressionRows(
  plain: RingDict<unknown>,
  gzip: RingDict<unknown>,
  roundMs: number,
  rounds: number,
  detail: string[][],
): Promise<Row[]> {
  const doc = bigDocument();
  const text = Buffer.from(JSON.stringify(doc));
  const stored = gzipSync(text, { level: 1 }).length;
  const cycle = (dict: RingDict<unknown>) => async (r: number) => {
    const key = `doc${r % 100}`;
    await dict.set(key, doc);
    return dict.get(key);
  };
  const [g, p] = await interleavedRounds([cycle(gzip), cycle(plain)], 1, rounds, roundMs, roundMs);
  addDetail(detail, 'gzip-1 set + get, 60 KB', g, 1);
  addDetail(detail, 'uncompressed set + get, 60 KB', p, 1);
  const level = (n: number) => microsPerCall(() => gzipSync(text, { level: n }), roundMs);
  const [one, six] = [level(1), level(6)];
  const six6 = gzipSync(text, { level: 6 }).length;
  return [
    {
      item: 7,
      what: `compression gzip-1 of a ${sig(text.length / 1024)} KB JSON document: stored size`,
      ours: `${sig(stored / 1024)} KB (${sig((stored / text.length) * 100)} %)`,
      baseline: `json, uncompressed: ${sig(text.length / 1024)} KB; gzip-6: ${sig(six6 / 1024)} KB (${sig((six6 / text.length) * 100)} %)`,
      ratio: times(stored / text.length),
      goal: 'not a goal',
      verdict: 'info',
    },
    {
      item: 7,
      what: 'compression gzip-1, set + get of that document, 1 in flight',
      ours: rate(medianLoad(g).perSecond, 'cycles/s'),
      baseline: `uncompressed: ${rate(medianLoad(p).perSecond, 'cycles/s')}`,
      ratio: times(
        pairedRatio(
          g.map((x) => x.perSecond),
          p.map((x) => x.perSecond),
        ),
      ),
      goal: 'not a goal',
      verdict: 'info',
    },
    {
      item: 7,
      what: '(for scale) gzip of that document, CPU per call',
      ours: `level 1: ${sig(one)} µs`,
      baseline: `level 6: ${sig(six)} µs`,
      ratio: times(one / six),
      goal: 'not a goal',
      verdict: 'info',
    },
  ];
}

function addDetail(
  detail: string[][],
  name: string,
  samples: readonly LoadResult[],
  inFlight = IN_FLIGHT,
): void {
  detail.push(loadDetail(inFlight, name, samples, medianLoad(samples)));
}
