import type { Redis } from 'ioredis';
import { Observable, Subject } from 'rxjs';
import { decodeValue, encodeValue, resolveCodec, type RingCodec } from './codec.js';
import { isConnectionError, RingConnectionError } from './node/connection-errors.js';
import {
  RingArgumentError,
  RingClusterUnavailableError,
  RingError,
  RingKeyError,
} from './errors.js';
import { HashRing } from './hashing/hash-ring.js';
import type { RingNodeState } from './node/node-health.js';
import { validateNodes } from './config/ring-config.js';
import {
  inGroup,
  resolveRingDictOptions,
  validateTtl,
  type ResolvedRingDictOptions,
  type RingDictOptions,
} from './config/ring-dict-options.js';
import { RingNode } from './node/ring-node.js';
import {
  deleteEntries,
  HandoffLog,
  transferEntries,
  type HandoffHints,
  type HandoffReport,
} from './handoff/handoff-log.js';
import { execPipeline, inChunks, PIPELINE_CHUNK } from './routing/pipeline.js';
import { readThroughRaw } from './read-through.js';
import { globEscape, scanKeys } from './scan/scan-keys.js';

export type RingEventType = 'ejected' | 'rediscovered' | 'unavailable';

/** What `events$` emits. Nodes are named by their configured name. */
export interface RingEvent {
  type: RingEventType;
  node?: string;
  at: Date;
  error?: Error;
  /** On `rediscovered`: what was handed back to the node before it rejoined. */
  handoff?: HandoffReport;
  /**
   * Sentinel nodes only: on `ejected`, the master that failed; on `rediscovered`, the master
   * the node rejoined on (`host:port`, never a credential).
   */
  master?: string;
  /**
   * Sentinel nodes only, on `rediscovered`: the node came back on another master than the one
   * it was ejected from, i.e. Sentinel failed over while it was away.
   */
  failover?: { from: string; to: string };
}

export interface RingSetOptions {
  /** Time to live in SECONDS (fractions allowed); overrides the dict's `expire`. */
  ttl?: number;
}

export interface RingClearOptions {
  /** Needed to clear a dict whose prefix is empty, i.e. every key of every node. */
  force?: boolean;
}

/**
 * Commands that visitRedis may send without a hint for hinted handoff; any other command
 * is assumed to change the entry.
 */
const READ_ONLY_COMMANDS = new Set([
  'GET',
  'GETRANGE',
  'STRLEN',
  'EXISTS',
  'TTL',
  'PTTL',
  'TYPE',
  'DUMP',
  'HGET',
  'HGETALL',
  'HMGET',
  'HEXISTS',
  'HLEN',
  'HKEYS',
  'HVALS',
  'LRANGE',
  'LLEN',
  'LINDEX',
  'SMEMBERS',
  'SISMEMBER',
  'SCARD',
  'ZRANGE',
  'ZSCORE',
  'ZCARD',
  'ZRANK',
  'ZCOUNT',
  'OBJECT',
]);

/** A command of the ring on one entry (or on a node's batch of entries). */
type NodeOp<T, E = string> = (client: Redis, entries: E) => Promise<T>;
type EntryOp<T> = NodeOp<T>;

// The everyday commands, made once: a request allocates no closure for them.
const GET: EntryOp<string | null> = (client, entry) => client.get(entry);
const GET_BUFFER: EntryOp<Buffer | null> = (client, entry) => client.getBuffer(entry);
const DEL: EntryOp<number> = (client, entry) => client.del(entry);
const EXISTS: EntryOp<number> = (client, entry) => client.exists(entry);
const orUndefined = <T>(reply: T | null): T | undefined => reply ?? undefined;
const isPositive = (count: number): boolean => count > 0;
const nothing = (): void => undefined;
const asIs = <T>(reply: T): T => reply;
/** setRaw's payload: the value as it is, whatever the codec. */
const rawPayload = (_codec: unknown, raw: string | Buffer): string | Buffer => raw;
/** What SET answers without NX/XX/GET. */
type SetReply = 'OK';

/** SCAN batch size: large enough to keep round trips few, small enough not to stall Redis. */
const SCAN_COUNT = 1000;

/**
 * A dict over several Redis servers, sharded by consistent hashing.
 *
 * Two rings route requests: the total ring (every configured node) and the alive ring
 * (nodes not ejected). A key lives on `aliveHash.locate(getEntry(key))`. A node that
 * fails at the connection level is ejected and the request moves on to the next alive
 * owner; a node that answers again (heartbeat PING or a `retryRatio` probe) rejoins.
 *
 * `F` is what `onFail` returns; without `onFail` it is `never` and methods throw
 * `RingClusterUnavailableError` when no node is alive.
 */
export class RingDict<V = unknown, F = never> implements AsyncIterable<[string, V]> {
  /** Every configured node: `.locate()` names the node a key belongs to when all are alive. */
  readonly totalHash: HashRing;
  /** Observable of ejections, rediscoveries and "no node alive" transitions. */
  readonly events$: Observable<RingEvent>;

  private alive: HashRing;
  private readonly options: ResolvedRingDictOptions<V, F>;
  private readonly nodes = new Map<string, RingNode>();
  private readonly codec: RingCodec<V>;
  private readonly prefix: string;
  private readonly defaultKey: boolean;
  private readonly events = new Subject<RingEvent>();
  /** Revivals under way, so that the heartbeat and probes share one per node. */
  private readonly reviving = new Map<RingNode, Promise<void>>();
  private readonly handoff: HandoffLog;
  /** Hints taken by handoffs under way, per owner: still remembered for shadowedBy(). */
  private readonly handingOff = new Map<string, HandoffHints>();
  private readonly heartbeat?: NodeJS.Timeout;
  private ejectedCount = 0;
  private unavailable = false;
  private closed = false;
  /** Commands of this ring sent and not yet answered: under load, writes are batched. */
  private inFlight = 0;

  constructor(options: RingDictOptions<V, F>) {
    this.options = resolveRingDictOptions(options);
    const { nodes, commandTimeout, heartbeatInterval } = this.options;
    const addresses = validateNodes(nodes, options.name);
    this.codec = resolveCodec(this.options.codec);
    this.handoff = new HandoffLog(this.options.handoffLimit);
    this.prefix = this.options.prefix;
    this.defaultKey = this.options.key === String;

    const capacities: Record<string, number> = {};
    for (const [name, node] of Object.entries(nodes)) capacities[name] = node.capacity;
    this.totalHash = inGroup(
      options.name,
      () =>
        new HashRing(capacities, {
          hashFunction: this.options.hashFunction,
          distribution: this.options.distribution,
          slices: this.options.slices,
          hashTag: this.options.hashTag,
        }),
    );
    this.alive = this.totalHash;
    this.events$ = this.events.asObservable();

    for (const [name, node] of Object.entries(nodes)) {
      const ringNode = new RingNode(
        name,
        node.capacity,
        node.connection,
        addresses.get(name)!,
        commandTimeout,
      );
      this.nodes.set(name, ringNode);
      ringNode.client.on('end', () => this.connectionLost(ringNode));
      // Sentinel nodes: a failover announced by the sentinels ejects the node at once, so it
      // stops writing to the demoted master; the heartbeat brings it back on the new one.
      ringNode.onMasterSwitch = (error) => this.eject(ringNode, error);
    }
    if (!this.options.lazyConnect) void this.connect();
    if (heartbeatInterval > 0) {
      this.heartbeat = setInterval(() => this.beat(), heartbeatInterval);
      // The dict alone never keeps a process alive; its open sockets do until close().
      this.heartbeat.unref();
    }
  }

  /** Nodes not ejected: `.locate()` names the node that serves a key now. */
  get aliveHash(): HashRing {
    return this.alive;
  }

  /** Default time to live of `set()` in seconds (the `expire` option), if any. */
  get expire(): number | undefined {
    return this.options.expire;
  }

  /** The prefix prepended to every key. */
  get keyPrefix(): string {
    return this.prefix;
  }

  /** The label given as `name` (the NestJS group name), `'default'` otherwise. */
  get name(): string {
    return this.options.name;
  }

  /** The Redis key of `key`: `prefix + key(key)`. */
  getEntry(key: unknown): string {
    const s = this.defaultKey
      ? typeof key === 'string'
        ? key
        : defaultKeyString(key)
      : this.options.key(key);
    if (typeof s !== 'string') {
      throw new RingKeyError(
        `The key function returned ${s === null ? 'null' : typeof s} for ${describeKey(key)}; it must return a string`,
      );
    }
    // A lone surrogate has no UTF-8 form: Redis would get U+FFFD, and two keys would be one.
    if (!(s as WellFormedString).isWellFormed()) {
      throw new RingKeyError(
        `The key ${JSON.stringify(s)} is not well-formed UTF-16 (a lone surrogate)`,
      );
    }
    return this.prefix + s;
  }

  /** The decoded value, or undefined when the key is missing. */
  get(key: unknown): Promise<V | undefined | F> {
    return this.request(key, this.codec.binary ? GET_BUFFER : GET, false, this.decoded, answerFail);
  }

  /** The stored string as it is, bypassing the codec (for layers with their own encoding). */
  getRaw(key: unknown): Promise<string | undefined | F> {
    return this.request(key, GET, false, orUndefined, answerFail);
  }

  /**
   * For `@RingCached`, not part of the API: `getRaw`, except that when no node can answer
   * it rejects with the RingClusterUnavailableError `getRaw` would throw without `onFail`.
   * A cache would take `onFail`'s answer for a stored value, and never call the method.
   */
  [readThroughRaw](key: unknown): Promise<string | undefined> {
    return this.request(key, GET, false, orUndefined, this.rejectFail);
  }

  /** Stores `value` with one atomic `SET entry value [PX ms]`. `ttl` is in seconds. */
  set(key: unknown, value: V, options?: RingSetOptions): Promise<void | F> {
    return this.store('set', key, value, options, encodeValue);
  }

  /** Stores `raw` as it is, bypassing the codec, like `set` otherwise. */
  setRaw(key: unknown, raw: string | Buffer, options?: RingSetOptions): Promise<void | F> {
    return this.store('setRaw', key, raw, options, rawPayload);
  }

  /** True when a key was removed. */
  delete(key: unknown): Promise<boolean | F> {
    return this.request(key, DEL, true, isPositive, answerFail);
  }

  /** True when the key is present. */
  has(key: unknown): Promise<boolean | F> {
    return this.request(key, EXISTS, false, isPositive, answerFail);
  }

  /** A reply of GET decoded; `entry` names the key if it cannot be. */
  private readonly decoded = (raw: string | Buffer | null, entry: string): V | undefined =>
    raw === null ? undefined : decodeValue(this.codec, raw, entry);

  /**
   * One command on the entry of `key`, its reply mapped by `done`. Not async, like `route`:
   * a bad key rejects the returned promise, as it would an async method's.
   */
  private request<T, R, G = F>(
    key: unknown,
    op: EntryOp<T>,
    write: boolean,
    done: (reply: T, entry: string) => R,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    try {
      return this.route(this.getEntry(key), op, write, done, failed);
    } catch (error) {
      // A bad key, or a user hash function that throws.
      return Promise.reject(error);
    }
  }

  /** `set` or `setRaw`: one atomic `SET entry payload [PX ms]`, the payload made by `toPayload`. */
  private store<P>(
    method: 'set' | 'setRaw',
    key: unknown,
    value: P,
    options: RingSetOptions | undefined,
    toPayload: (codec: RingCodec<V>, value: P, entry: string) => string | Buffer,
  ): Promise<void | F> {
    try {
      const entry = this.getEntry(key);
      const ttl = this.ttlOf(method, options);
      const payload = toPayload(this.codec, value, entry);
      const op: EntryOp<SetReply> =
        ttl === undefined
          ? (client, at) => client.set(at, payload)
          : (client, at) => client.set(at, payload, 'PX', pxOf(ttl));
      return this.route(entry, op, true, nothing, answerFail);
    } catch (error) {
      // A bad key, ttl or value, or a user hash function that throws.
      return Promise.reject(error);
    }
  }

  /** `options.ttl` of a call of `method`, checked, else the dict's `expire`. */
  private ttlOf(method: string, options: RingSetOptions | undefined): number | undefined {
    if (options === undefined || options === null) return this.options.expire;
    if (typeof options !== 'object') {
      // `set(key, value, 60)` would otherwise store the value with no TTL at all.
      throw new RingArgumentError(
        `${method}: options must be an object such as { ttl: 60 }, got ${describeKey(options)}`,
      );
    }
    for (const field in options) {
      if (field !== 'ttl') {
        throw new RingArgumentError(`${method}: unknown option "${field}"; the option is ttl`);
      }
    }
    return options.ttl === undefined
      ? this.options.expire
      : validateTtl(options.ttl, `${method}: ttl`);
  }

  /**
   * Runs any Redis command on the node owning `key`, with the entry as first argument and
   * the same eject/retry rules. Reply errors are thrown unchanged.
   */
  async visitRedis(
    command: string,
    key: unknown,
    ...args: (string | number | Buffer)[]
  ): Promise<unknown> {
    if (typeof command !== 'string' || command === '') {
      throw new RingArgumentError(
        `visitRedis: the command must be a non-empty string, got ${describeKey(command)}`,
      );
    }
    args.forEach((arg, i) => {
      if (typeof arg !== 'string' && typeof arg !== 'number' && !Buffer.isBuffer(arg)) {
        throw new RingArgumentError(
          `visitRedis ${command}: argument ${i + 1} must be a string, a number or a Buffer, got ${describeKey(arg)}`,
        );
      }
    });
    const entry = this.getEntry(key);
    const write = !READ_ONLY_COMMANDS.has(command.toUpperCase());
    return this.route(
      entry,
      (client) => client.call(command, entry, ...args),
      write,
      asIs,
      answerFail,
    );
  }

  /**
   * Values of many keys, in input order (undefined where missing): keys are grouped by
   * node, one MGET per node (per `PIPELINE_CHUNK` keys), nodes in parallel, with the same
   * eject/retry rules per node.
   */
  async getMany(keys: readonly unknown[]): Promise<(V | undefined)[] | F> {
    const entries = keyList('getMany', keys).map((key) => this.getEntry(key));
    const values: (V | undefined)[] = Array.from({ length: entries.length });
    const failed = await this.routeMany<(string | Buffer | null)[][]>(
      entries,
      (client, indexes, node) =>
        inRounds<(string | Buffer | null)[]>(node, indexes, (chunk) => {
          const batch = chunk.map((i) => entries[i]);
          return this.codec.binary ? client.mgetBuffer(batch) : client.mget(batch);
        }),
      (indexes, rounds) => {
        let j = 0;
        for (const raws of rounds) {
          for (const raw of raws) {
            const i = indexes[j++];
            values[i] = raw === null ? undefined : decodeValue(this.codec, raw, entries[i]);
          }
        }
      },
    );
    return failed ? failed[FAIL] : values;
  }

  /**
   * Stores many entries: pipelines of `SET entry value [PX ms]` per node (`PIPELINE_CHUNK`
   * at a time), nodes in parallel.
   */
  async setMany(
    entries: Iterable<readonly [unknown, V]>,
    options?: RingSetOptions,
  ): Promise<void | F> {
    const ttl = this.ttlOf('setMany', options);
    const px = ttl === undefined ? undefined : pxOf(ttl);
    const names: string[] = [];
    const payloads: (string | Buffer)[] = [];
    if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries)) {
      throw new RingArgumentError(
        `setMany: entries must be an iterable of [key, value] pairs, got ${describeKey(entries)}`,
      );
    }
    // Encode everything first: a value that cannot be encoded writes nothing at all.
    for (const pair of entries) {
      if (!Array.isArray(pair)) {
        throw new RingArgumentError(
          `setMany: entry #${names.length} must be a [key, value] pair, got ${describeKey(pair)}`,
        );
      }
      const [key, value] = pair as readonly [unknown, V];
      const entry = this.getEntry(key);
      names.push(entry);
      payloads.push(encodeValue(this.codec, value, entry));
    }
    const failed = await this.routeMany(
      names,
      (client, indexes, node) =>
        inRounds(node, indexes, (chunk) => {
          const pipeline = client.pipeline();
          for (const i of chunk) {
            if (px === undefined) pipeline.set(names[i], payloads[i]);
            else pipeline.set(names[i], payloads[i], 'PX', px);
          }
          return execPipeline(pipeline.exec());
        }),
      () => undefined,
      true,
    );
    if (failed) return failed[FAIL];
  }

  /**
   * Deletes many keys (one DEL per node, per `PIPELINE_CHUNK` keys, nodes in parallel);
   * answers how many were removed.
   */
  async deleteMany(keys: readonly unknown[]): Promise<number | F> {
    const entries = keyList('deleteMany', keys).map((key) => this.getEntry(key));
    let removed = 0;
    const failed = await this.routeMany(
      entries,
      (client, indexes, node) =>
        inRounds(node, indexes, async (chunk) => {
          // Counted as each round is answered: a node that fails a later round did delete
          // these, and its keys are retried on the next node, which holds none of them.
          const count = await client.del(...chunk.map((i) => entries[i]));
          removed += count;
        }),
      () => undefined,
      true,
    );
    return failed ? failed[FAIL] : removed;
  }

  /** Entries under `prefix` across alive nodes (SCAN, never KEYS). */
  async size(): Promise<number | F> {
    let count = 0;
    for await (const batch of this.ownedBatches()) {
      if (this.isFail(batch)) return batch[FAIL];
      count += batch.keys.length;
    }
    return count;
  }

  /** This dict's keys, prefix stripped. Each entry is read from the node that owns it now. */
  async *keys(): AsyncGenerator<string> {
    for await (const batch of this.ownedBatches()) {
      if (this.isFail(batch)) return;
      for (const entry of batch.keys) yield entry.slice(this.prefix.length);
    }
  }

  async *values(): AsyncGenerator<V> {
    for await (const [, value] of this.entries()) yield value;
  }

  /** `[key, value]` pairs, like `Map#entries`. */
  async *entries(): AsyncGenerator<[string, V]> {
    for await (const batch of this.ownedBatches()) {
      if (this.isFail(batch)) return;
      const { node, keys } = batch;
      if (keys.length === 0) continue;
      let raws: (string | Buffer | null)[];
      try {
        raws = this.codec.binary
          ? await node.client.mgetBuffer(keys)
          : await node.client.mget(keys);
      } catch (error) {
        this.ejectFromScan(node, error);
        continue;
      }
      for (let i = 0; i < keys.length; i++) {
        const raw = raws[i];
        // Expired or deleted between SCAN and MGET.
        if (raw === null) continue;
        yield [keys[i].slice(this.prefix.length), decodeValue(this.codec, raw, keys[i])];
      }
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<[string, V]> {
    return this.entries();
  }

  /**
   * Deletes every entry under `prefix` on every alive node, stale copies included, and
   * answers how many were deleted. Refuses an empty prefix unless `{ force: true }`.
   */
  async clear(options?: RingClearOptions): Promise<number | F> {
    if (this.prefix === '' && !options?.force) {
      throw new RingError(
        'clear() refused: this dict has an empty prefix, so it would delete every key of every node. Pass { force: true } to do that.',
      );
    }
    return this.unlinkMatching('');
  }

  /**
   * Deletes every entry whose key (after the dict's prefix) starts with `keyPrefix`, on
   * every alive node; answers how many were deleted. Used to evict one family of entries,
   * e.g. every cached call of one method.
   */
  async clearPrefix(keyPrefix: string): Promise<number | F> {
    if (typeof keyPrefix !== 'string') {
      throw new RingArgumentError(
        `clearPrefix: the prefix must be a string, got ${describeKey(keyPrefix)}`,
      );
    }
    if (keyPrefix === '' && this.prefix === '') {
      throw new RingError(
        'clearPrefix() needs a non-empty prefix; use clear({ force: true }) to delete everything',
      );
    }
    return this.unlinkMatching(keyPrefix);
  }

  private async unlinkMatching(keyPrefix: string): Promise<number | F> {
    const prefix = this.prefix + keyPrefix;
    // Nodes that are out now still hold these entries: they delete them before they rejoin,
    // or the cleared values would come back with them.
    const transitions = new Map<RingNode, number>();
    if (this.handoff.enabled) {
      for (const node of this.nodes.values()) {
        if (!node.health.alive) this.handoff.rememberClear(node.name, prefix);
        transitions.set(node, transitionsOf(node));
      }
    }
    let deleted = 0;
    try {
      for await (const batch of this.nodeBatches(keyPrefix)) {
        if (this.isFail(batch)) return batch[FAIL];
        if (batch.keys.length === 0) continue;
        try {
          deleted += await batch.node.client.unlink(...batch.keys);
        } catch (error) {
          this.ejectFromScan(batch.node, error);
        }
      }
    } finally {
      if (!this.closed) deleted += await this.clearChangedDuring(transitions, prefix);
    }
    // Closed while its last commands were answered: the catch-up did not run, or not all of it.
    if (this.closed) throw this.closedError();
    return deleted;
  }

  /**
   * After a clear of `prefix`, the nodes it may have missed (their transitions counted in
   * `before`). A node ejected and back meanwhile was skipped, cut short, or handed values the
   * clear then missed: it is cleared now. Only then is the clear noted again for every node
   * still out: a revival may have taken the first note and be copying back values from a
   * node cleared here, so it must not finish before that node is. Repeated while nodes come
   * and go during this very pass. Answers how many entries were deleted.
   */
  private async clearChangedDuring(
    before: ReadonlyMap<RingNode, number>,
    prefix: string,
  ): Promise<number> {
    let deleted = 0;
    let since = before;
    for (let pass = 0; pass < CLEAR_CATCH_UP_PASSES; pass++) {
      const now = new Map([...since.keys()].map((node) => [node, transitionsOf(node)]));
      for (const [node, transitions] of now) {
        if (!node.health.alive || transitions === since.get(node)) continue;
        try {
          if (!node.ready) await node.connect(this.options.commandTimeout);
          deleted += await this.unlinkPrefix(node, prefix);
        } catch (error) {
          this.ejectFromScan(node, error);
        }
      }
      for (const node of now.keys()) {
        if (!node.health.alive) this.handoff.rememberClear(node.name, prefix);
      }
      if ([...now].every(([node, transitions]) => transitionsOf(node) === transitions)) break;
      since = now;
    }
    return deleted;
  }

  /**
   * Opens the connection of every alive node that has none, in parallel. A node that cannot
   * be reached within `commandTimeout` is ejected, as by a request (the heartbeat brings it
   * back). Resolves once each node is connected or ejected; never rejects (a closed dict
   * connects nothing). The constructor calls it unless `lazyConnect`.
   */
  async connect(): Promise<void> {
    if (this.closed) return;
    const alive = [...this.nodes.values()].filter((node) => node.health.alive);
    await Promise.all(
      alive.map((node) =>
        node
          .connect(this.options.commandTimeout)
          .catch((error: unknown) => this.eject(node, error)),
      ),
    );
  }

  /** Every node's health, in name order. */
  nodeStates(): RingNodeState[] {
    return this.totalHash.nodes.map((name) => this.nodes.get(name)!.health.snapshot());
  }

  /** Quits every connection and stops the heartbeat; the process can exit afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    await Promise.all(
      [...this.nodes.values()].map((node) => node.close(this.options.commandTimeout)),
    );
    this.events.complete();
  }

  // ---------------------------------------------------------------- routing

  /**
   * Runs `op` on the node owning `entry` and answers `done` of its reply; on a
   * connection-class failure ejects that node and retries on the next alive owner. Each node
   * is tried at most once per request. `write` says whether `op` changes the entry
   * (remembered for hinted handoff).
   *
   * Not async: in the everyday case (the owner is connected and no write needs a hint) a
   * request is one `send` and one `then`, without the async frames of the general path,
   * which made most of the ring's own garbage per request. Everything else, and any retry
   * after a failure, takes the general path, `routeFrom`.
   */
  private route<T, R, G = F>(
    entry: string,
    op: EntryOp<T>,
    write: boolean,
    done: (reply: T, entry: string) => R,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    if (this.closed) {
      return Promise.reject(this.closedError());
    }
    const probe = this.probe(entry);
    if (probe !== undefined) {
      return this.finish(
        probe.then(() => this.routeFrom(this.pick(entry), entry, write, op)),
        entry,
        done,
        failed,
      );
    }
    const node = this.pick(entry);
    if (node === undefined || !node.ready || (write && this.hintsNeeded())) {
      return this.finish(this.routeFrom(node, entry, write, op), entry, done, failed);
    }
    return this.dispatch(node, op, entry).then(
      (reply) => {
        this.settled(node);
        return done(reply, entry);
      },
      (error: unknown) => {
        this.settled(node);
        // routeFrom's rule, kept here to spare the everyday path a frame: a reply error means
        // the node answered (the caller's problem); a connection error moves on to the next.
        if (!isConnectionError(error)) throw error;
        const tried: RingNode[] = [];
        const next = this.failOver(node, entry, error, tried);
        return this.finish(
          this.routeFrom(next, entry, write, op, tried, error),
          entry,
          done,
          failed,
        );
      },
    );
  }

  /** `done` of what the general path answered, or `failed` of its failure (onFail's result). */
  private finish<T, R, G>(
    result: Promise<T | Fail<F>>,
    entry: string,
    done: (reply: T, entry: string) => R,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    return result.then((reply) => (this.isFail(reply) ? failed(reply) : done(reply, entry)));
  }

  /**
   * The general path of `route`, from `node` on; `tried` and `lastError` say what failed
   * before.
   */
  private async routeFrom<T>(
    node: RingNode | undefined,
    entry: string,
    write: boolean,
    op: EntryOp<T>,
    tried: RingNode[] = [],
    lastError?: unknown,
  ): Promise<T | Fail<F>> {
    while (node !== undefined) {
      // Closed while this request was failing over: it must not open a connection again.
      if (this.closed) throw this.closedError();
      try {
        return await this.attempt(node, entry, write, op);
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        lastError = error;
        node = this.failOver(node, entry, error, tried);
      }
    }
    return this.fail(lastError);
  }

  /** `node` failed at the connection level: eject it and name the next owner of `entry`. */
  private failOver(
    node: RingNode,
    entry: string,
    error: unknown,
    tried: RingNode[],
  ): RingNode | undefined {
    this.eject(node, error);
    tried.push(node);
    return this.nextOwner(entry, tried);
  }

  /** Writes must be remembered for hinted handoff while some node is ejected. */
  private hintsNeeded(): boolean {
    return this.ejectedCount > 0 && this.handoff.enabled;
  }

  /**
   * One try on one node: connect if needed, send, and remember writes that land here on
   * behalf of an ejected node, so they can be handed back when it returns.
   */
  private async attempt<T, E extends string | readonly string[]>(
    node: RingNode,
    entries: E,
    write: boolean,
    op: NodeOp<T, E>,
  ): Promise<T> {
    if (!node.ready) await node.connect(this.options.commandTimeout);
    let onBehalf: [owner: string, entry: string][] | undefined;
    if (write && this.hintsNeeded()) {
      // A single entry comes as a string: wrapped in an array only while hints are needed.
      for (const entry of typeof entries === 'string' ? [entries] : entries) {
        const owner = this.totalHash.locate(entry)!;
        if (owner !== node.name) (onBehalf ??= []).push([owner, entry]);
      }
    }
    try {
      return await this.sendOn(node, op, entries);
    } finally {
      // Remembered even when the write failed: it may have been applied all the same,
      // and an unneeded hint costs one extra copy, never a stale read.
      if (onBehalf) await this.rememberOnBehalf(node, onBehalf);
    }
  }

  /**
   * Sends `op` on `node` (connected), batching writes under load; reports the answer — or
   * the failure — to the node's deadline watch.
   */
  private sendOn<T, E>(node: RingNode, op: NodeOp<T, E>, entries: E): Promise<T> {
    return this.dispatch(node, op, entries).then(
      (reply) => {
        this.settled(node);
        return reply;
      },
      (error: unknown) => {
        this.settled(node);
        throw error;
      },
    );
  }

  /** sendOn without the `then`: the caller calls settled() once the promise settles. */
  private dispatch<T, E>(node: RingNode, op: NodeOp<T, E>, entries: E): Promise<T> {
    if (this.inFlight > 0) node.batchWrites();
    this.inFlight++;
    try {
      return node.send(op, entries);
    } catch (error) {
      // The caller settles this rejection like any other.
      return Promise.reject(error);
    }
  }

  private settled(node: RingNode): void {
    node.answered();
    this.inFlight--;
  }

  /** Records writes that `node` took for ejected owners (hinted handoff). */
  private async rememberOnBehalf(
    node: RingNode,
    writes: readonly [owner: string, entry: string][],
  ): Promise<void> {
    const late: Promise<unknown>[] = [];
    for (const [owner, entry] of writes) {
      const ownerNode = this.nodes.get(owner)!;
      if (ownerNode.health.alive) {
        // The owner rejoined while this write was on its way, too late for its handoff:
        // delete the entry on both sides before the caller goes on — a miss, never stale.
        late.push(this.deleteOrRemember(ownerNode, entry), this.deleteOrRemember(node, entry));
        continue;
      }
      const previous = this.handoff.remember(owner, entry, node.name);
      if (previous !== null) this.dropCopy(previous, entry);
    }
    if (late.length > 0) await Promise.all(late);
  }

  /** A node holds a copy of `entry` that a newer write elsewhere made stale: delete it. */
  private dropCopy(name: string, entry: string): void {
    const node = this.nodes.get(name)!;
    // Unreachable now: delete it before that node rejoins.
    if (!node.health.alive) this.handoff.remember(name, entry, null);
    else void this.deleteOrRemember(node, entry);
  }

  /**
   * Deletes `entry` on `node`. Should that fail (the node is dying: a write still buffered
   * there may yet land), the node deletes it before it next rejoins.
   */
  private deleteOrRemember(node: RingNode, entry: string): Promise<void> {
    return node.client.del(entry).then(
      () => undefined,
      () => {
        this.handoff.remember(node.name, entry, null);
      },
    );
  }

  /**
   * The rediscovery probe: with probability `retryRatio`, while some node is ejected, a request
   * whose total-ring owner is out tries that owner first. The answer is the owner's revival
   * (connect, PING, hinted handoff, rejoin), at most `commandTimeout` on a node that does not
   * answer; the request then goes where the alive ring says, to that owner if it came back.
   * It is brought up to date before it serves the request, never after. Undefined: no probe.
   */
  private probe(entry: string): Promise<void> | undefined {
    if (this.ejectedCount === 0 || Math.random() >= this.options.retryRatio) return undefined;
    const owner = this.nodes.get(this.totalHash.locate(entry)!)!;
    return owner.health.alive ? undefined : this.reviveSoon(owner);
  }

  /** The alive owner of `entry`, or undefined when no node is alive. */
  private pick(entry: string): RingNode | undefined {
    const name = this.alive.locate(entry);
    return name === undefined ? undefined : this.nodes.get(name);
  }

  private nextOwner(entry: string, tried: Iterable<RingNode>): RingNode | undefined {
    const name = this.ringWithout(tried).locate(entry);
    return name === undefined ? undefined : this.nodes.get(name);
  }

  /** The alive ring minus nodes that failed this request (ejected already, unless a heartbeat brought one back meanwhile). */
  private ringWithout(failed: Iterable<RingNode>): HashRing {
    let ring = this.alive;
    for (const node of failed) ring = ring.without(node.name);
    return ring;
  }

  /**
   * The batch form of `route`: entries grouped by owner, `run` once per node with that
   * node's entries, nodes in parallel. A node that fails at the connection level is
   * ejected and its entries regrouped over the next owners; nodes that answered may take
   * more. Answers `onFail`'s result when some entries have no node left.
   */
  private async routeMany<R>(
    entries: readonly string[],
    run: (client: Redis, indexes: number[], node: RingNode) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
    write = false,
  ): Promise<Fail<F> | undefined> {
    if (this.closed) throw this.closedError();
    const failed = new Set<RingNode>();
    let lastError: unknown;
    let homeless = false;
    if (this.ejectedCount > 0) {
      // Each entry may probe its owner, as a single request would; the batch waits for them.
      const probes: Promise<void>[] = [];
      for (const entry of entries) {
        const probe = this.probe(entry);
        if (probe !== undefined) probes.push(probe);
      }
      if (probes.length > 0) await Promise.all(probes);
    }
    let groups = new Map<RingNode, number[]>();
    for (let i = 0; i < entries.length; i++) {
      const node = this.pick(entries[i]);
      if (node === undefined) homeless = true;
      else addTo(groups, node, i);
    }
    while (groups.size > 0) {
      if (this.closed) throw this.closedError();
      const retry = new Map<RingNode, number[]>();
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          try {
            const batch = indexes.map((i) => entries[i]);
            absorb(
              indexes,
              await this.attempt(node, batch, write, (client) => run(client, indexes, node)),
            );
          } catch (error) {
            if (!isConnectionError(error)) throw error;
            lastError = error;
            this.eject(node, error);
            failed.add(node);
            const ring = this.ringWithout(failed);
            for (const i of indexes) {
              const next = ring.locate(entries[i]);
              if (next === undefined) homeless = true;
              else addTo(retry, this.nodes.get(next)!, i);
            }
          }
        }),
      );
      groups = retry;
    }
    return homeless ? this.fail(lastError) : undefined;
  }

  private closedError(): RingError {
    return new RingError(`RingDict "${this.options.name}" is closed`);
  }

  private fail(lastError: unknown): Fail<F> {
    // The nodes failed because close() dropped their connections: that is what the caller
    // must hear, not that the cluster is down (and not onFail's answer).
    if (this.closed) throw this.closedError();
    this.signalUnavailable();
    // The error is built only when thrown: with onFail, an outage answers at full speed.
    if (this.options.onFail) return { [FAIL]: this.options.onFail(this), lastError };
    throw this.unavailableError(lastError);
  }

  /** The answer of a request no node could serve, for `readThroughRaw`: the error. */
  private readonly rejectFail = (fail: Fail<unknown>): never => {
    throw this.unavailableError(fail.lastError);
  };

  /** Why a request found no node to answer it: each node's last error, scrubbed. */
  private unavailableError(lastError: unknown): RingClusterUnavailableError {
    // Each node's last error says why it is out: refused, timed out, authentication failed…
    const why = this.nodeStates()
      .map((state) => `${state.name}: ${state.lastError ?? 'not reached'}`)
      .join('; ');
    // Never the raw ioredis error: an AUTH reply error carries the command and its password.
    const cause =
      lastError instanceof Error
        ? new RingConnectionError(this.scrub(lastError.message))
        : undefined;
    // Nodes that failed this request may be back by now (rediscovered meanwhile): then the
    // request, not the cluster, is what every node failed — a value too big to move within
    // commandTimeout, say.
    const what = this.alive.size === 0 ? 'no node is alive' : 'every node failed this request';
    return new RingClusterUnavailableError(
      `RingDict "${this.options.name}": ${what} (${why})`,
      cause,
    );
  }

  /** `message` without any configured node's credentials. */
  private scrub(message: string): string {
    for (const node of this.nodes.values()) {
      for (const secret of node.address.secrets) message = message.split(secret).join('***');
    }
    return message;
  }

  private isFail(value: unknown): value is Fail<F> {
    return typeof value === 'object' && value !== null && FAIL in value;
  }

  // ---------------------------------------------------------------- health

  private eject(node: RingNode, error: unknown): void {
    const message = node.describe(error);
    // Commands still queued on this connection fail now and move on, instead of each
    // waiting out its own timeout.
    node.drop();
    if (this.closed || !node.health.eject(message)) return;
    this.alive = this.alive.without(node.name);
    this.ejectedCount++;
    const ejectError = new RingConnectionError(message);
    const event: RingEvent = {
      type: 'ejected',
      node: node.name,
      at: node.health.ejectedAt!,
      error: ejectError,
    };
    // Sentinel nodes: say which master failed.
    if (node.health.master !== undefined) event.master = node.health.master;
    this.emit(event);
    this.callback(() => this.options.onNodeEjected?.(this, node.name, ejectError));
    if (this.alive.size === 0) this.signalUnavailable();
  }

  private rediscover(node: RingNode, handoff?: HandoffReport): void {
    if (this.closed || !node.health.rediscover()) return;
    this.alive = this.alive.with(node.name, node.capacity);
    this.ejectedCount--;
    this.unavailable = false;
    const event: RingEvent = { type: 'rediscovered', node: node.name, at: new Date() };
    if (handoff) event.handoff = handoff;
    // Sentinel nodes: which master it rejoined on, and whether that is a new one (a failover).
    if (node.health.master !== undefined) event.master = node.health.master;
    const failover = node.health.failoverSinceEjection();
    if (failover) event.failover = failover;
    this.emit(event);
    this.callback(() => this.options.onNodeRediscovered?.(this, node.name));
  }

  /** Fires `unavailable` once per transition to "no node alive". */
  private signalUnavailable(): void {
    if (this.unavailable || this.alive.size > 0) return;
    this.unavailable = true;
    this.emit({ type: 'unavailable', at: new Date() });
  }

  /**
   * An alive node lost its connection: reconnect once, eject if that fails. Not when the
   * connection was dropped on purpose: the requests it failed eject the node, with the reason
   * it was dropped (a reconnect would start afresh and forget it).
   */
  private connectionLost(node: RingNode): void {
    if (this.closed || !node.health.alive || node.droppedOnPurpose) return;
    node.connect(this.options.commandTimeout).catch((error: unknown) => this.eject(node, error));
  }

  /** PINGs every ejected node in parallel; those that answer rejoin. */
  private beat(): void {
    if (this.closed) return;
    for (const node of this.nodes.values()) if (!node.health.alive) this.reviveSoon(node);
  }

  /** A revival of `node`: the one under way, else a new one. revive() handles its own failures. */
  private reviveSoon(node: RingNode): Promise<void> {
    let revival = this.reviving.get(node);
    if (revival === undefined) {
      if (this.closed) return Promise.resolve();
      revival = this.revive(node).finally(() => this.reviving.delete(node));
      this.reviving.set(node, revival);
    }
    return revival;
  }

  /**
   * An ejected node that answers PING is brought up to date (hinted handoff) and only then
   * rejoins the alive ring, so it never serves a value older than one written meanwhile.
   */
  private async revive(node: RingNode): Promise<void> {
    let report: HandoffReport | undefined;
    try {
      await node.connect(this.options.commandTimeout);
      await node.client.ping();
      if (this.handoff.enabled) report = await this.handOff(node);
    } catch (error) {
      node.health.lastError = node.describe(error);
      // A connection that did not answer is useless: start afresh next time.
      node.drop();
      return;
    }
    if (this.closed || node.health.alive) return;
    if (this.handoff.enabled && !this.invalidateRest(node)) return;
    this.rediscover(node, report);
  }

  /**
   * Copies back, from the nodes that took them, the entries written or deleted on `node`'s
   * behalf while it was away. Writes keep coming meanwhile, so it takes a few passes.
   */
  private async handOff(node: RingNode): Promise<HandoffReport> {
    const report: HandoffReport = { entries: 0, overflowed: false };
    for (let pass = 0; pass < 3; pass++) {
      const taken = this.handoff.take(node.name);
      this.handingOff.set(node.name, taken.hints);
      try {
        // Clears first: entries written after a clear are among the hints, handed back below.
        for (const keyPrefix of taken.clears) await this.unlinkPrefix(node, keyPrefix);
        if (taken.overflowed) {
          await this.applyOverflowPolicy(node, report, taken.hints, taken.spilledTo);
        } else if (pass === 0 && this.handoff.anySpilled && this.clearsOnOverflow) {
          // Not overflowed itself, it may still shadow copies another overflowed owner left.
          await this.unlinkElsewhere(this.shadowedBy(node));
        }
        if (taken.hints.size === 0) break;
        const byHeir = new Map<RingNode, string[]>();
        const deletes: string[] = [];
        for (const [entry, heirName] of taken.hints) {
          const heir = heirName === null ? undefined : this.nodes.get(heirName)!;
          if (heir?.health.alive) {
            const list = byHeir.get(heir);
            if (list) list.push(entry);
            else byHeir.set(heir, [entry]);
          } else {
            // Deleted meanwhile, or its newer copy is on a node that is down too: a miss
            // here, and that copy goes before its own node rejoins.
            deletes.push(entry);
            if (heirName !== null) this.handoff.remember(heirName, entry, null);
          }
        }
        await Promise.all([
          deleteEntries(node.client, deletes),
          ...[...byHeir].map(async ([heir, entries]) => {
            if (!heir.ready) await heir.connect(this.options.commandTimeout);
            await transferEntries(heir.client, node.client, entries);
          }),
        ]);
      } catch (error) {
        this.handoff.restore(node.name, taken);
        throw error;
      } finally {
        this.handingOff.delete(node.name);
      }
      report.entries += taken.hints.size;
    }
    return report;
  }

  /**
   * Entries written for `node` after the handoff's last pass: deleted on the node and on the
   * node that took them, in this same tick, so the DELs reach the node before any read that
   * follows its rejoining (one connection keeps its commands in order). False when too much
   * was written, or something cleared, meanwhile: the node stays out until the next try.
   */
  private invalidateRest(node: RingNode): boolean {
    const rest = this.handoff.take(node.name);
    // A clear meanwhile needs a SCAN, which this tick cannot wait for: the next try does it.
    if (rest.overflowed || rest.clears.length > 0) {
      this.handoff.restore(node.name, rest);
      return false;
    }
    for (const [entry, heirName] of rest.hints) {
      void this.deleteOrRemember(node, entry);
      if (heirName !== null) this.dropCopy(heirName, entry);
    }
    return true;
  }

  /** Too much was written meanwhile to remember it all: clear the node's entries, or trust TTLs. */
  private async applyOverflowPolicy(
    node: RingNode,
    report: HandoffReport,
    remembered: HandoffHints,
    spilledTo: ReadonlySet<string>,
  ): Promise<void> {
    report.overflowed = true;
    const policy = this.clearsOnOverflow ? 'clear' : 'ttl';
    report.policy = policy;
    if (policy !== 'clear') {
      // TTLs are trusted, its unremembered copies' too: else it would be held out for good.
      this.handoff.clearedSpills(node.name);
      return;
    }
    let cleared = await this.unlinkPrefix(node, this.prefix);
    this.handoff.clearedSpills(node.name);
    // The writes the log did not remember left their copies on the nodes that took them,
    // which would serve them, stale, at the node's next outage: delete every entry the node
    // owns wherever else it is — but the remembered copies, which the handoff copies back next.
    // Owns in the total ring, as the log counts owners: with another node out too, the alive
    // ring would lend the node entries that other node owns.
    const shadowed = this.shadowedBy(node);
    cleared += await this.unlinkElsewhere((entry, holder) =>
      this.totalHash.locate(entry) === node.name
        ? remembered.get(entry) !== holder
        : shadowed(entry),
    );
    // A node that is out too and took such writes holds copies as well: it is cleared when it
    // returns. Only those: marking every node out would clear a node returning at the same
    // time a second time, remembered entries and all.
    for (const other of this.nodes.values()) {
      if (other !== node && !other.health.alive && spilledTo.has(other.name)) {
        this.handoff.overflow(other.name);
      }
    }
    report.cleared = (report.cleared ?? 0) + cleared;
  }

  /** The `'clear'` overflow policy applies (with no prefix it would clear whole servers). */
  private get clearsOnOverflow(): boolean {
    return this.prefix !== '' && this.options.handoffOverflow === 'clear';
  }

  /**
   * Picks the unremembered copies of an owner still out that route to `node` once it is
   * back: they would be served, stale, at `node`'s next outage. Remembered ones — in its log,
   * or taken by its handoff under way — are that owner's to hand back.
   */
  private shadowedBy(node: RingNode): (entry: string) => boolean {
    const back = this.alive.with(node.name, node.capacity);
    return (entry) => {
      const owner = this.nodes.get(this.totalHash.locate(entry)!)!;
      return (
        owner !== node &&
        !owner.health.alive &&
        back.locate(entry) === node.name &&
        !this.handoff.remembers(owner.name, entry) &&
        !this.handingOff.get(owner.name)?.has(entry)
      );
    };
  }

  /**
   * Deletes, on every alive node, the entries under the prefix that `which` picks (given the
   * node holding them); answers how many. A node that fails is the one failing: it is ejected,
   * and cleared when it returns, as its copies can no longer be told from its own entries.
   * A node that answers with a reply error (an ACL without SCAN, MISCONF) is not ejected: the
   * returning node stays out, its entries served where they are, and its health says which
   * node refused the clean-up.
   */
  private async unlinkElsewhere(
    which: (entry: string, holder: string) => boolean,
  ): Promise<number> {
    let deleted = 0;
    for (const name of this.alive.nodes) {
      const other = this.nodes.get(name)!;
      try {
        if (!other.ready) await other.connect(this.options.commandTimeout);
        deleted += await this.unlinkPrefix(other, this.prefix, (entry) => which(entry, name));
      } catch (error) {
        if (!isConnectionError(error)) {
          throw new RingError(`clearing its entries on ${name} failed: ${other.describe(error)}`);
        }
        this.eject(other, error);
        this.handoff.overflow(name);
      }
    }
    return deleted;
  }

  /**
   * Deletes every key of `node` that starts with `keyPrefix` (SCAN + UNLINK), or only those
   * `which` accepts; answers how many.
   */
  private async unlinkPrefix(
    node: RingNode,
    keyPrefix: string,
    which?: (entry: string) => boolean,
  ): Promise<number> {
    let deleted = 0;
    for await (const found of scanKeys(node.client, `${globEscape(keyPrefix)}*`, SCAN_COUNT)) {
      const keys = which ? found.filter(which) : found;
      if (keys.length > 0) deleted += await node.client.unlink(...keys);
    }
    return deleted;
  }

  private emit(event: RingEvent): void {
    if (!this.closed) this.events.next(event);
  }

  /** User callbacks must not break routing: their errors are reported, not thrown. */
  private callback(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      process.emitWarning(`ring-redis: a node callback threw: ${(error as Error).message}`);
    }
  }

  // ---------------------------------------------------------------- scanning

  /**
   * What a scan (size, keys, entries, clear) does with a node that failed it. Closed
   * meanwhile: the call fails as closed, as what it counted, listed or cleared so far is not
   * the answer. A reply error is the caller's. A connection error ejects the node, and the
   * scan goes on without it.
   */
  private ejectFromScan(node: RingNode, error: unknown): void {
    if (this.closed) throw this.closedError();
    if (!isConnectionError(error)) throw error;
    this.eject(node, error);
  }

  /** Batches of keys under `prefix + keyPrefix`, node by node, over the nodes alive when it starts. */
  private async *nodeBatches(
    keyPrefix = '',
  ): AsyncGenerator<{ node: RingNode; keys: string[] } | Fail<F>> {
    if (this.closed) throw this.closedError();
    const names = this.alive.nodes;
    if (names.length === 0) {
      yield this.fail(undefined);
      return;
    }
    const match = `${globEscape(this.prefix + keyPrefix)}*`;
    let scanned = false;
    let lastError: unknown;
    for (const name of names) {
      const node = this.nodes.get(name)!;
      try {
        if (!node.ready) await node.connect(this.options.commandTimeout);
        for await (const keys of scanKeys(node.client, match, SCAN_COUNT)) yield { node, keys };
        scanned = true;
      } catch (error) {
        // Its keys now belong to the next nodes; what they hold is scanned there.
        this.ejectFromScan(node, error);
        lastError = error;
      }
    }
    // No node finished its scan: nothing was counted, listed or cleared, which is not an
    // empty dict.
    if (!scanned) yield this.fail(lastError);
  }

  /** Like `nodeBatches`, keeping only the keys each node owns now (no stale copies, no duplicates). */
  private async *ownedBatches(): AsyncGenerator<{ node: RingNode; keys: string[] } | Fail<F>> {
    for await (const batch of this.nodeBatches()) {
      if (this.isFail(batch)) {
        yield batch;
        return;
      }
      const ring = this.alive;
      const keys = batch.keys.filter((entry) => ring.locate(entry) === batch.node.name);
      yield { node: batch.node, keys };
    }
  }
}

/**
 * Marks `onFail`'s answer on its way through the routing code, so it cannot be mistaken for
 * a reply; `lastError` is the last node's failure, for the error thrown without `onFail`.
 */
const FAIL = Symbol('ring-redis.fail');
type Fail<F> = { [FAIL]: F; lastError: unknown };

/** The answer of a request no node could serve: `onFail`'s. */
function answerFail<F>(fail: Fail<F>): F {
  return fail[FAIL];
}

function addTo<K>(groups: Map<K, number[]>, key: K, index: number): void {
  const group = groups.get(key);
  if (group) group.push(index);
  else groups.set(key, [index]);
}

/** `String.prototype.isWellFormed` (Node ≥ 20), which the ES2023 typings do not declare. */
type WellFormedString = string & { isWellFormed(): boolean };

/**
 * A node's part of a batch, `PIPELINE_CHUNK` entries at a time, each sent once the previous
 * one is answered; answers the replies in order. Each answer gives the node a fresh
 * `commandTimeout`: a batch longer than that on a node that keeps answering is not a hung
 * node. (One MGET or DEL of every key would also spread them all as call arguments, which
 * overflows the stack past some 100 000 keys.)
 */
async function inRounds<R>(
  node: RingNode,
  indexes: number[],
  send: (chunk: number[]) => Promise<R>,
): Promise<R[]> {
  const replies: R[] = [];
  await inChunks(indexes, PIPELINE_CHUNK, async (chunk) => {
    replies.push(await send(chunk));
    node.progressed();
  });
  return replies;
}

/**
 * Passes of a clear's catch-up (see clearChangedDuring) while nodes keep coming and going;
 * past them, a node that is out still has the clear noted.
 */
const CLEAR_CATCH_UP_PASSES = 5;

/** How many times `node` was ejected or rediscovered so far. */
function transitionsOf(node: RingNode): number {
  return node.health.ejections + node.health.rediscoveries;
}

/** A TTL in seconds as SET's PX: whole milliseconds, at least 1. */
function pxOf(ttl: number): number {
  return Math.max(1, Math.round(ttl * 1000));
}

/** `keys`, checked to be an array: a string would be taken for a list of its characters. */
function keyList(method: string, keys: readonly unknown[]): readonly unknown[] {
  if (!Array.isArray(keys)) {
    throw new RingArgumentError(`${method}: keys must be an array, got ${describeKey(keys)}`);
  }
  return keys;
}

/**
 * The default `key` function, String, for a key that is not a string. An object must have a
 * string form of its own (a Date, a URL, a class with toString): String() would make every
 * other object the one key "[object Object]".
 */
function defaultKeyString(key: unknown): string {
  let s: string | undefined;
  try {
    s = String(key);
  } catch {
    // No string form at all (Object.create(null)).
  }
  if (s === undefined || (typeof key === 'object' && key !== null && /^\[object \w*\]$/.test(s))) {
    throw new RingKeyError(
      `${describeKey(key)} has no string form of its own; pass a string or give a \`key\` function`,
    );
  }
  return s;
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'object' && key !== null)
    return `an object (${key.constructor?.name ?? 'Object'})`;
  return `${typeof key} ${String(key)}`;
}
