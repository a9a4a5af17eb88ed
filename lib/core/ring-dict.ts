import type { Redis } from 'ioredis';
import { Observable, Subject } from 'rxjs';
import { decodeValue, encodeValue, resolveCodec, type RingCodec } from './codec.js';
import { isConnectionError, RingConnectionError } from './connection-errors.js';
import { RingClusterUnavailableError, RingError, RingKeyError } from './errors.js';
import { HashRing } from './hash-ring.js';
import type { RingNodeState } from './node-health.js';
import { validateNodes } from './ring-config.js';
import {
  resolveRingDictOptions,
  validateTtl,
  type ResolvedRingDictOptions,
  type RingDictOptions,
} from './ring-dict-options.js';
import { RingNode } from './ring-node.js';
import { globEscape, scanKeys } from './scan.js';

export type RingEventType = 'ejected' | 'rediscovered' | 'unavailable';

/** What `events$` emits. Nodes are named by their configured name. */
export interface RingEvent {
  type: RingEventType;
  node?: string;
  at: Date;
  error?: Error;
}

export interface RingSetOptions {
  /** Time to live in SECONDS (fractions allowed); overrides the dict's `expire`. */
  ttl?: number;
}

export interface RingClearOptions {
  /** Needed to clear a dict whose prefix is empty, i.e. every key of every node. */
  force?: boolean;
}

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
  private readonly reviving = new Set<RingNode>();
  private readonly heartbeat?: NodeJS.Timeout;
  private ejectedCount = 0;
  private unavailable = false;
  private closed = false;

  constructor(options: RingDictOptions<V, F>) {
    this.options = resolveRingDictOptions(options);
    const { nodes, commandTimeout, heartbeatInterval } = this.options;
    const addresses = validateNodes(nodes, options.name);
    this.codec = resolveCodec(this.options.codec);
    this.prefix = this.options.prefix;
    this.defaultKey = this.options.key === String;

    const capacities: Record<string, number> = {};
    for (const [name, node] of Object.entries(nodes)) capacities[name] = node.capacity;
    this.totalHash = new HashRing(capacities, {
      hashFunction: this.options.hashFunction,
      distribution: this.options.distribution,
      slices: this.options.slices,
      hashTag: this.options.hashTag,
    });
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
      ringNode.connect(commandTimeout).catch((error: unknown) => this.eject(ringNode, error));
    }
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
    if (this.defaultKey && typeof key === 'string') return this.prefix + key;
    const s = this.options.key(key);
    if (typeof s !== 'string') {
      throw new RingKeyError(
        `The key function returned ${s === null ? 'null' : typeof s} for ${describeKey(key)}; it must return a string`,
      );
    }
    return this.prefix + s;
  }

  /** The decoded value, or undefined when the key is missing. */
  async get(key: unknown): Promise<V | undefined | F> {
    const entry = this.getEntry(key);
    const raw = await this.route<string | Buffer | null>(entry, (client) =>
      this.codec.binary ? client.getBuffer(entry) : client.get(entry),
    );
    if (this.isFail(raw)) return raw[FAIL];
    if (raw === null) return undefined;
    return decodeValue(this.codec, raw, entry);
  }

  /** Stores `value` with one atomic `SET entry value [PX ms]`. `ttl` is in seconds. */
  async set(key: unknown, value: V, options?: RingSetOptions): Promise<void | F> {
    const entry = this.getEntry(key);
    const ttl = options?.ttl === undefined ? this.options.expire : validateTtl(options.ttl, 'ttl');
    const payload = encodeValue(this.codec, value, entry);
    const result = await this.route(entry, (client) =>
      ttl === undefined
        ? client.set(entry, payload)
        : client.set(entry, payload, 'PX', Math.max(1, Math.round(ttl * 1000))),
    );
    if (this.isFail(result)) return result[FAIL];
  }

  /** True when a key was removed. */
  async delete(key: unknown): Promise<boolean | F> {
    const entry = this.getEntry(key);
    const removed = await this.route(entry, (client) => client.del(entry));
    return this.isFail(removed) ? removed[FAIL] : removed > 0;
  }

  /** True when the key is present. */
  async has(key: unknown): Promise<boolean | F> {
    const entry = this.getEntry(key);
    const count = await this.route(entry, (client) => client.exists(entry));
    return this.isFail(count) ? count[FAIL] : count > 0;
  }

  /**
   * Runs any Redis command on the node owning `key`, with the entry as first argument and
   * the same eject/retry rules. Reply errors are thrown unchanged.
   */
  async visitRedis(command: string, key: unknown, ...args: (string | number | Buffer)[]): Promise<unknown> {
    const entry = this.getEntry(key);
    return this.route(entry, (client) => client.call(command, entry, ...args));
  }

  /**
   * Values of many keys, in input order (undefined where missing): keys are grouped by
   * node, one MGET per node, nodes in parallel, with the same eject/retry rules per node.
   */
  async getMany(keys: readonly unknown[]): Promise<(V | undefined)[] | F> {
    const entries = keys.map((key) => this.getEntry(key));
    const values = new Array<V | undefined>(entries.length);
    const failed = await this.routeMany<(string | Buffer | null)[]>(
      entries,
      (client, indexes) => {
        const batch = indexes.map((i) => entries[i]);
        return this.codec.binary ? client.mgetBuffer(batch) : client.mget(batch);
      },
      (indexes, raws) => {
        for (let j = 0; j < indexes.length; j++) {
          const raw = raws[j];
          const i = indexes[j];
          values[i] = raw === null ? undefined : decodeValue(this.codec, raw, entries[i]);
        }
      },
    );
    return failed ? failed[FAIL] : values;
  }

  /** Stores many entries: one pipeline of `SET entry value [PX ms]` per node, nodes in parallel. */
  async setMany(
    entries: Iterable<readonly [unknown, V]>,
    options?: RingSetOptions,
  ): Promise<void | F> {
    const ttl = options?.ttl === undefined ? this.options.expire : validateTtl(options.ttl, 'ttl');
    const px = ttl === undefined ? undefined : Math.max(1, Math.round(ttl * 1000));
    const names: string[] = [];
    const payloads: (string | Buffer)[] = [];
    // Encode everything first: a value that cannot be encoded writes nothing at all.
    for (const [key, value] of entries) {
      const entry = this.getEntry(key);
      names.push(entry);
      payloads.push(encodeValue(this.codec, value, entry));
    }
    const failed = await this.routeMany(
      names,
      (client, indexes) => {
        const pipeline = client.pipeline();
        for (const i of indexes) {
          if (px === undefined) pipeline.set(names[i], payloads[i]);
          else pipeline.set(names[i], payloads[i], 'PX', px);
        }
        return execPipeline(pipeline.exec());
      },
      () => undefined,
    );
    if (failed) return failed[FAIL];
  }

  /** Deletes many keys (one DEL per node, nodes in parallel); answers how many were removed. */
  async deleteMany(keys: readonly unknown[]): Promise<number | F> {
    const entries = keys.map((key) => this.getEntry(key));
    let removed = 0;
    const failed = await this.routeMany(
      entries,
      (client, indexes) => client.del(...indexes.map((i) => entries[i])),
      (_indexes, count) => (removed += count),
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
        raws = this.codec.binary ? await node.client.mgetBuffer(keys) : await node.client.mget(keys);
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        this.eject(node, error);
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
    if (typeof keyPrefix !== 'string' || (keyPrefix === '' && this.prefix === '')) {
      throw new RingError('clearPrefix() needs a non-empty prefix; use clear({ force: true }) to delete everything');
    }
    return this.unlinkMatching(keyPrefix);
  }

  private async unlinkMatching(keyPrefix: string): Promise<number | F> {
    let deleted = 0;
    for await (const batch of this.nodeBatches(keyPrefix)) {
      if (this.isFail(batch)) return batch[FAIL];
      if (batch.keys.length === 0) continue;
      try {
        deleted += await batch.node.client.unlink(...batch.keys);
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        this.eject(batch.node, error);
      }
    }
    return deleted;
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
   * Runs `op` on the node owning `entry`; on a connection-class failure ejects that node
   * and retries on the next alive owner. Each node is tried at most once per request.
   */
  private async route<T>(entry: string, op: (client: Redis) => Promise<T>): Promise<T | Fail<F>> {
    if (this.closed) throw new RingError(`RingDict "${this.options.name}" is closed`);
    let node = this.pick(entry);
    let tried: RingNode[] | undefined;
    let lastError: unknown;
    while (node !== undefined) {
      try {
        if (!node.ready) await node.connect(this.options.commandTimeout);
        node.batchWrites();
        node.inFlight++;
        let result: T;
        try {
          result = await op(node.client);
        } finally {
          node.inFlight--;
        }
        // A probe that an ejected node answered: it is back.
        if (!node.health.alive) this.rediscover(node);
        return result;
      } catch (error) {
        if (!isConnectionError(error)) {
          // Redis answered, so the node is alive; the reply error is the caller's.
          if (!node.health.alive) this.rediscover(node);
          throw error;
        }
        lastError = error;
        this.eject(node, error);
        (tried ??= []).push(node);
        node = this.nextOwner(entry, tried);
      }
    }
    return this.fail(lastError);
  }

  /** The alive owner, or with probability `retryRatio` the total ring's owner (a probe). */
  private pick(entry: string): RingNode | undefined {
    if (this.ejectedCount > 0 && Math.random() < this.options.retryRatio) {
      return this.nodes.get(this.totalHash.locate(entry)!);
    }
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
    run: (client: Redis, indexes: number[]) => Promise<R>,
    absorb: (indexes: number[], result: R) => void,
  ): Promise<Fail<F> | undefined> {
    if (this.closed) throw new RingError(`RingDict "${this.options.name}" is closed`);
    const failed = new Set<RingNode>();
    let lastError: unknown;
    let homeless = false;
    let groups = new Map<RingNode, number[]>();
    for (let i = 0; i < entries.length; i++) {
      const node = this.pick(entries[i]);
      if (node === undefined) homeless = true;
      else addTo(groups, node, i);
    }
    while (groups.size > 0) {
      const retry = new Map<RingNode, number[]>();
      await Promise.all(
        [...groups].map(async ([node, indexes]) => {
          try {
            if (!node.ready) await node.connect(this.options.commandTimeout);
            node.batchWrites();
            node.inFlight++;
            let result: R;
            try {
              result = await run(node.client, indexes);
            } finally {
              node.inFlight--;
            }
            if (!node.health.alive) this.rediscover(node);
            absorb(indexes, result);
          } catch (error) {
            if (!isConnectionError(error)) {
              if (!node.health.alive) this.rediscover(node);
              throw error;
            }
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

  private fail(lastError: unknown): Fail<F> {
    this.signalUnavailable();
    if (this.options.onFail) return { [FAIL]: this.options.onFail(this) };
    const names = this.totalHash.nodes.join(', ');
    throw new RingClusterUnavailableError(
      `RingDict "${this.options.name}": no node is alive (configured: ${names})`,
      lastError instanceof Error ? lastError : undefined,
    );
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
    this.emit({ type: 'ejected', node: node.name, at: node.health.ejectedAt!, error: ejectError });
    this.callback(() => this.options.onNodeEjected?.(this, node.name, ejectError));
    if (this.alive.size === 0) this.signalUnavailable();
  }

  private rediscover(node: RingNode): void {
    if (this.closed || !node.health.rediscover()) return;
    this.alive = this.alive.with(node.name, node.capacity);
    this.ejectedCount--;
    this.unavailable = false;
    this.emit({ type: 'rediscovered', node: node.name, at: new Date() });
    this.callback(() => this.options.onNodeRediscovered?.(this, node.name));
  }

  /** Fires `unavailable` once per transition to "no node alive". */
  private signalUnavailable(): void {
    if (this.unavailable || this.alive.size > 0) return;
    this.unavailable = true;
    this.emit({ type: 'unavailable', at: new Date() });
  }

  /** An alive node lost its connection: reconnect once, eject if that fails. */
  private connectionLost(node: RingNode): void {
    if (this.closed || !node.health.alive) return;
    node.connect(this.options.commandTimeout).catch((error: unknown) => this.eject(node, error));
  }

  /** PINGs every ejected node in parallel; those that answer rejoin. */
  private beat(): void {
    if (this.closed) return;
    for (const node of this.nodes.values()) {
      if (node.health.alive || this.reviving.has(node)) continue;
      this.reviving.add(node);
      this.revive(node).finally(() => this.reviving.delete(node));
    }
  }

  private async revive(node: RingNode): Promise<void> {
    try {
      await node.connect(this.options.commandTimeout);
      await node.client.ping();
      this.rediscover(node);
    } catch (error) {
      node.health.lastError = node.describe(error);
      // A connection that did not answer PING is useless: start afresh next time.
      node.drop();
    }
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

  /** Batches of keys under `prefix + keyPrefix`, node by node, over the nodes alive when it starts. */
  private async *nodeBatches(
    keyPrefix = '',
  ): AsyncGenerator<{ node: RingNode; keys: string[] } | Fail<F>> {
    if (this.closed) throw new RingError(`RingDict "${this.options.name}" is closed`);
    const names = this.alive.nodes;
    if (names.length === 0) {
      yield this.fail(undefined);
      return;
    }
    const match = `${globEscape(this.prefix + keyPrefix)}*`;
    for (const name of names) {
      const node = this.nodes.get(name)!;
      try {
        if (!node.ready) await node.connect(this.options.commandTimeout);
        for await (const keys of scanKeys(node.client, match, SCAN_COUNT)) yield { node, keys };
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        // Its keys now belong to the next nodes; what they hold is scanned there.
        this.eject(node, error);
      }
    }
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

/** Marks `onFail`'s answer on its way through the routing code, so it cannot be mistaken for a reply. */
const FAIL = Symbol('ring-redis.fail');
type Fail<F> = { [FAIL]: F };

function addTo<K>(groups: Map<K, number[]>, key: K, index: number): void {
  const group = groups.get(key);
  if (group) group.push(index);
  else groups.set(key, [index]);
}

/** A pipeline's replies; the first error among them is thrown as it is. */
async function execPipeline(
  pending: Promise<[error: Error | null, result: unknown][] | null>,
): Promise<unknown[]> {
  const replies = (await pending) ?? [];
  const error = replies.find(([e]) => e !== null)?.[0];
  if (error) throw error;
  return replies.map(([, result]) => result);
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'object' && key !== null) return `an object (${key.constructor?.name ?? 'Object'})`;
  return `${typeof key} ${String(key)}`;
}
