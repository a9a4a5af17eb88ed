import type { Observable } from 'rxjs';
import { decodeValue, encodeValue, resolveCodec, type RingCodec } from './codec.js';
import { rawPayload } from './storable.js';
import {
  callOptions,
  checkCommand,
  clearPrefixOf,
  commandArgument,
  forceOption,
  ttlOption,
} from './config/call-options.js';
import type { RingClearOptions, RingSetOptions } from './config/call-options.js';
import { MAX_TIMER_MS } from './config/option-checks.js';
import { capacitiesOf, validateNodes, type RingNodesConfig } from './config/ring-config.js';
import {
  inGroup,
  resolveRingDictOptions,
  type ResolvedRingDictOptions,
  type RingDictOptions,
} from './config/ring-dict-options.js';
import { RingArgumentError, RingError } from './errors.js';
import { HashRing, type HashRingOptions } from './hashing/hash-ring.js';
import { describeKey, EntryKeys } from './keys/entry-keys.js';
import { answerFail, isFail, type Fail, type RingFailures } from './membership/ring-failures.js';
import type { MembershipChange } from './membership/membership-change.js';
import type { RingMembership } from './membership/ring-membership.js';
import type { RingEvent } from './membership/ring-events.js';
import type { RingOperation } from './metrics/ring-operations.js';
import type { RingNodePing, RingNodeState } from './node/node-health.js';
import {
  cacheView,
  clearPrefixOrReject,
  deleteIfHolds,
  deleteManyOrReject,
  readThroughRaw,
  type CacheView,
} from './read-through.js';
import type { NodeReviver } from './revival/node-reviver.js';
import type { BatchOps } from './routing/batch-ops.js';
import {
  asIs,
  DEL,
  deleteIfHoldsOp,
  EXISTS,
  GET,
  GET_BUFFER,
  isPositive,
  nothing,
  orUndefined,
  READ_ONLY_COMMANDS,
  setOp,
  type EntryOp,
} from './routing/entry-ops.js';
import type { RingClear } from './scan/ring-clear.js';
import type { RingScanner } from './scan/ring-scanner.js';
import type { FleetView } from './fleet/fleet-view.js';
import { createEngine, type EntryRouter } from './ring-engine.js';
import { toWire } from './keys/wire.js';
import type { PayloadLimit } from './payload-limit.js';

export type { RingClearOptions, RingSetOptions } from './config/call-options.js';
export type { RingEvent, RingEventType } from './membership/ring-events.js';

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
 *
 * The dict is a facade: the membership owns the nodes and the rings, the router sends
 * requests, the handoff recorder and catch-up keep returning nodes up to date, the reviver
 * brings them back, the scanner and the clear walk the nodes.
 */
export class RingDict<V = unknown, F = never> implements AsyncIterable<[string, V]> {
  /** Observable of ejections, rediscoveries and "no node alive" transitions. */
  readonly events$: Observable<RingEvent>;

  private readonly options: ResolvedRingDictOptions<V, F>;
  private readonly codec: RingCodec<V>;
  private readonly entryKeys: EntryKeys;
  private readonly membership: RingMembership;
  private readonly failures: RingFailures<F>;
  private readonly fleet: FleetView;
  private readonly reviver: NodeReviver;
  private readonly router: EntryRouter<F>;
  private readonly batches: BatchOps<V, F>;
  private readonly payloads: PayloadLimit;
  private readonly scanner: RingScanner<F>;
  private readonly clearer: RingClear<F>;
  private readonly changes: MembershipChange;
  private readonly cacheView: CacheView;
  private closing?: Promise<void>;

  constructor(options: RingDictOptions<V, F>) {
    this.options = resolveRingDictOptions(options);
    const o = this.options;
    const addresses = validateNodes(o.nodes, options.name);
    this.codec = resolveCodec(o.codec);
    this.entryKeys = new EntryKeys(o.prefix, o.key);
    const totalHash = inGroup(options.name, () => new HashRing(capacitiesOf(o.nodes), ringOf(o)));
    const onFail = o.onFail;
    const engine = createEngine(o, {
      totalHash,
      entryKeys: this.entryKeys,
      codec: this.codec,
      addresses,
      ring: ringOf(o),
      callbacks: {
        ejected: (node, error) => o.onNodeEjected?.(this, node, error),
        rediscovered: (node) => o.onNodeRediscovered?.(this, node),
      },
      onFail: onFail && (() => onFail(this)),
    });
    this.membership = engine.membership;
    this.events$ = engine.membership.events$;
    this.failures = engine.failures;
    this.fleet = engine.fleet;
    this.reviver = engine.reviver;
    this.router = engine.router;
    this.scanner = engine.scanner;
    this.clearer = engine.clearer;
    this.changes = engine.changes;
    this.batches = engine.batches;
    this.payloads = engine.payloads;
    this.cacheView = engine.cacheView;
    if (!o.lazyConnect) void this.connect();
    this.reviver.start();
    this.fleet.start();
  }

  /** Every member node: `.locate()` names the node a key belongs to when all are alive. */
  get totalHash(): HashRing {
    return this.membership.totalHash;
  }

  /** Nodes not ejected: `.locate()` names the node that serves a key now. */
  get aliveHash(): HashRing {
    return this.membership.aliveHash;
  }

  /** Default time to live of `set()` in seconds (the `expire` option), if any. */
  get expire(): number | undefined {
    return this.options.expire;
  }

  /** The prefix prepended to every key. */
  get keyPrefix(): string {
    return this.options.prefix;
  }

  /** The label given as `name` (the NestJS group name), `'default'` otherwise. */
  get name(): string {
    return this.options.name;
  }

  /** The alive nodes holding `key`'s copies now (`replicas` of them at most), reads' first. */
  nodesOf(key: unknown): string[] {
    return this.aliveHash.locateAll(this.entryKeys.entry(key), this.options.replicas);
  }

  /** The Redis key of `key`: `prefix + key(key)`. */
  getEntry(key: unknown): string {
    return this.entryKeys.entry(key);
  }

  /** The decoded value, or undefined when the key is missing. */
  get(key: unknown): Promise<V | undefined | F> {
    const op = this.codec.binary ? GET_BUFFER : GET;
    return this.request('get', key, op, false, this.decoded, answerFail);
  }

  /** The stored string as it is, bypassing the codec (for layers with their own encoding). */
  getRaw(key: unknown): Promise<string | undefined | F> {
    return this.request('getRaw', key, GET, false, orUndefined, answerFail);
  }

  /**
   * For `@RingCached`, not part of the API: `getRaw`, except that when no node can answer
   * it rejects with the RingClusterUnavailableError `getRaw` would throw without `onFail`.
   * A cache would take `onFail`'s answer for a stored value, and never call the method.
   */
  [readThroughRaw](key: unknown): Promise<string | undefined> {
    return this.request('getRaw', key, GET, false, orUndefined, this.failures.rejectFail);
  }

  /** For `@RingCached`, not part of the API: its near cache and migration, if any. */
  get [cacheView](): CacheView {
    return this.cacheView;
  }

  /**
   * For `@RingCached`'s lock, not part of the API: deletes `key` only while it holds `value`,
   * atomically on its node. True when deleted; rejects like `[readThroughRaw]`. Counted as
   * `visitRedis`, as taking the lock is.
   */
  [deleteIfHolds](key: unknown, value: string): Promise<boolean> {
    const op = deleteIfHoldsOp(value);
    return this.request('visitRedis', key, op, true, isPositive, this.failures.rejectFail);
  }

  /** For `@RingCached`'s tags, not part of the API: `deleteMany`, rejecting like `[readThroughRaw]`. */
  [deleteManyOrReject](keys: readonly unknown[]): Promise<number> {
    return this.batches.deleteMany(keys, this.failures.rejectFail) as Promise<number>;
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
    return this.request('delete', key, DEL, true, isPositive, answerFail);
  }

  /** True when the key is present. */
  has(key: unknown): Promise<boolean | F> {
    return this.request('has', key, EXISTS, false, isPositive, answerFail);
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
    checkCommand(command);
    args.forEach((arg, i) => commandArgument(command, arg, i));
    const entry = this.entryKeys.entry(key);
    const write = !READ_ONLY_COMMANDS.has(command.toUpperCase());
    const op: EntryOp<unknown> = (client) => client.call(command, toWire(entry), ...args);
    return this.router.route(entry, op, write, asIs, answerFail, 'visitRedis');
  }

  /**
   * Values of many keys, in input order (undefined where missing): keys are grouped by
   * node, one MGET per node (per 250 keys), nodes in parallel, with the same eject/retry
   * rules per node.
   */
  async getMany(keys: readonly unknown[]): Promise<(V | undefined)[] | F> {
    return this.batches.getMany(keys);
  }

  /** Stores many entries: pipelines of `SET entry value [PX ms]` per node, nodes in parallel. */
  async setMany(
    entries: Iterable<readonly [unknown, V]>,
    options?: RingSetOptions,
  ): Promise<void | F> {
    return this.batches.setMany(entries, this.ttlOf('setMany', options));
  }

  /** Deletes many keys (one DEL per node per 250 keys, nodes in parallel); answers how many were removed. */
  async deleteMany(keys: readonly unknown[]): Promise<number | F> {
    return this.batches.deleteMany(keys);
  }

  /** Entries under `prefix` across alive nodes (SCAN, never KEYS). */
  async size(): Promise<number | F> {
    let count = 0;
    for await (const batch of this.scanner.ownedBatches()) {
      if (isFail<F>(batch)) return answerFail(batch);
      count += batch.keys.length;
    }
    return count;
  }

  /** This dict's keys, prefix stripped. Each entry is read from the node that owns it now. */
  async *keys(): AsyncGenerator<string> {
    for await (const batch of this.scanner.ownedBatches()) {
      if (isFail(batch)) return;
      for (const entry of batch.keys) yield this.entryKeys.keyOf(entry);
    }
  }

  async *values(): AsyncGenerator<V> {
    for await (const [, value] of this.entries()) yield value;
  }

  /** `[key, value]` pairs, like `Map#entries`. */
  async *entries(): AsyncGenerator<[string, V]> {
    for await (const [entry, raw] of this.scanner.ownedValues(this.codec.binary === true)) {
      yield [this.entryKeys.keyOf(entry), decodeValue(this.codec, raw, entry)];
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
    const force = forceOption(options);
    if (this.options.prefix === '' && !force) {
      throw new RingError(
        'clear() refused: this dict has an empty prefix, so it would delete every key of every node. Pass { force: true } to do that.',
      );
    }
    return this.clearer.run('');
  }

  /**
   * Deletes every entry whose key (after the dict's prefix) starts with `keyPrefix`, on every
   * alive node; answers how many. Evicts a family of entries (a cached method's calls, say).
   */
  async clearPrefix(keyPrefix: string): Promise<number | F> {
    return this.clearer.run(clearPrefixOf(keyPrefix, this.options.prefix));
  }

  /** For `@RingCached`'s evictAll, not part of the API: `clearPrefix`, rejecting like `[readThroughRaw]`. */
  [clearPrefixOrReject](keyPrefix: string): Promise<number> {
    const prefix = clearPrefixOf(keyPrefix, this.options.prefix);
    return this.clearer.run(prefix, this.failures.rejectFail) as Promise<number>;
  }

  /**
   * Opens the connection of every alive node that has none, in parallel. A node that cannot
   * be reached within `connectTimeout` is ejected, as by a request (the heartbeat brings it
   * back). Resolves once each node is connected or ejected; never rejects (a closed dict
   * connects nothing). The constructor calls it unless `lazyConnect`.
   */
  async connect(): Promise<void> {
    if (this.membership.closed) return;
    const alive = [...this.membership.all()].filter((node) => node.health.alive);
    await Promise.all(
      alive.map((node) =>
        node
          .connect(this.options.connectTimeout)
          .catch((error: unknown) => this.membership.eject(node, error)),
      ),
    );
  }

  /** The membership at run time, checked like `nodes`; calls run in turn (docs/scaling.md). */
  setNodes(nodes: RingNodesConfig): Promise<void> {
    return this.changes.apply(nodes);
  }

  /** Every node's health, in name order. */
  nodeStates(): RingNodeState[] {
    return this.membership.nodeStates();
  }

  /**
   * PINGs every node in parallel within `timeout` ms (default `commandTimeout`), and acts on
   * the answers as a request or the heartbeat would: an alive node that does not answer is
   * ejected, an ejected node that answers is brought back. For health checks: a hung node
   * shows even with no traffic. Rejects only for a bad `timeout` or a closed dict.
   */
  async ping(options?: { timeout?: number }): Promise<RingNodePing[]> {
    const given = callOptions('ping', options, ['timeout'], '{ timeout: 500 }').timeout;
    const timeout = given ?? this.options.commandTimeout;
    if (!Number.isInteger(timeout) || timeout <= 0 || timeout > MAX_TIMER_MS) {
      // Beyond MAX_TIMER_MS setTimeout fires after 1 ms: every node would fail at once.
      throw new RingArgumentError(
        `ping: timeout must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${describeKey(timeout)}`,
      );
    }
    if (this.membership.closed) throw this.failures.closedError();
    return this.reviver.ping(timeout);
  }

  /**
   * Quits every connection and stops the heartbeat; the process can exit afterwards. A second
   * call answers when the first is done.
   */
  close(): Promise<void> {
    return (this.closing ??= this.closeNow());
  }

  private async closeNow(): Promise<void> {
    this.reviver.stop();
    // Closed from this line on: no request starts, fails over or opens a connection while the
    // reports are withdrawn. Apart, each paid a commandTimeout on a hung node in turn.
    const nodes = this.membership.close();
    await Promise.all([this.changes.close(), this.fleet.close(), nodes]);
  }

  /** A reply of GET decoded; `entry` names the key if it cannot be. */
  private readonly decoded = (raw: string | Buffer | null, entry: string): V | undefined =>
    raw === null ? undefined : decodeValue(this.codec, raw, entry);

  /**
   * One command on the entry of `key`, its reply mapped by `done`. Not async, like `route`:
   * a bad key rejects the returned promise, as it would an async method's.
   */
  private request<T, R, G = F>(
    operation: RingOperation,
    key: unknown,
    op: EntryOp<T>,
    write: boolean,
    done: (reply: T, entry: string) => R,
    failed: (fail: Fail<F>) => G,
  ): Promise<R | G> {
    try {
      return this.router.route(this.entryKeys.entry(key), op, write, done, failed, operation);
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
      const entry = this.entryKeys.entry(key);
      const ttl = this.ttlOf(method, options);
      const payload = toPayload(this.codec, value, entry);
      const op = setOp(payload, ttl);
      const wait = this.payloads.fits(payload, method, entry);
      if (!wait) return this.router.route(entry, op, true, nothing, answerFail, method);
      // A node's limit not known yet (before its first handshake).
      return wait.then(() => this.router.route(entry, op, true, nothing, answerFail, method));
    } catch (error) {
      // A bad key, ttl or value, or a user hash function that throws.
      return Promise.reject(error);
    }
  }

  private ttlOf(method: string, options: RingSetOptions | undefined): number | undefined {
    return ttlOption(method, options, this.options.expire);
  }
}

/** The hash ring's options among the dict's. */
function ringOf<V, F>(o: ResolvedRingDictOptions<V, F>): HashRingOptions {
  const { hashFunction, distribution, slices, hashTag } = o;
  return { hashFunction, distribution, slices, hashTag };
}
