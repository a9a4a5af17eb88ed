import type { NodeAddress } from './config/ring-config.js';
import type { ResolvedRingDictOptions } from './config/ring-dict-options.js';
import { FleetView } from './fleet/fleet-view.js';
import { HandoffCatchUp, type CatchUpOptions } from './handoff/handoff-catch-up.js';
import { HandoffRecorder } from './handoff/handoff-recorder.js';
import { HintKeys } from './handoff/hint-keys.js';
import { HashRing, type HashRingOptions } from './hashing/hash-ring.js';
import type { NodeCapacities } from './membership/node-lists.js';
import type { ResolvedRingNodeConfig } from './config/ring-config.js';
import { controlKey } from './keys/control-keys.js';
import { configOf, MembershipChange } from './membership/membership-change.js';
import { RingFailures } from './membership/ring-failures.js';
import { RingMembership, type MembershipHooks } from './membership/ring-membership.js';
import { observeRing } from './metrics/ring-observers.js';
import { RingConnectionError } from './node/connection-errors.js';
import { NearCache } from './near/near-cache.js';
import { NearRouter } from './near/near-router.js';
import { RingNode } from './node/ring-node.js';
import { NodeReviver } from './revival/node-reviver.js';
import type { RingCodec } from './codec.js';
import type { EntryKeys } from './keys/entry-keys.js';
import { BatchOps } from './routing/batch-ops.js';
import { ReplicaBatches } from './routing/replica-batches.js';
import { ReplicaOps } from './routing/replica-ops.js';
import { ReplicaPlacement } from './routing/replica-placement.js';
import { RequestRouter } from './routing/request-router.js';
import { MigrationRoute } from './routing/migration-route.js';
import { WarmUp } from './routing/warm-up.js';
import { RingClear } from './scan/ring-clear.js';
import { ReplicaScan } from './scan/replica-scan.js';
import { RingScanner } from './scan/ring-scanner.js';
import type { CacheView } from './read-through.js';
import { PayloadLimit } from './payload-limit.js';

/** How long a report of an unreachable node lives unless renewed, at the least (ms). */
const MIN_LEASE_MS = 3_000;
/** Ticks of the fleet's view a report outlives, should its process stop renewing it. */
const LEASE_TICKS = 5;

/** How a dict's single-entry requests are sent: to the owner, or to every copy. */
export type EntryRouter<F> = Pick<RequestRouter<F>, 'route'>;

/** The collaborators behind a RingDict, wired together (see createEngine). */
export interface RingEngine<V, F> {
  membership: RingMembership;
  failures: RingFailures<F>;
  fleet: FleetView;
  reviver: NodeReviver;
  router: EntryRouter<F>;
  batches: BatchOps<V, F>;
  /** Refuses values longer than a node accepts. */
  payloads: PayloadLimit;
  /** Where each entry's copies live (one copy unless `replicas`). */
  placement: ReplicaPlacement;
  scanner: RingScanner<F>;
  clearer: RingClear<F>;
  changes: MembershipChange;
  /** The near cache, when the `nearCache` option is on. */
  near?: NearCache;
  /** The near cache and the migration, for `@RingCached`. */
  cacheView: CacheView;
}

/** What the dict hands its engine besides its options. */
export interface EngineInputs<V, F> {
  totalHash: HashRing;
  entryKeys: EntryKeys;
  codec: RingCodec<V>;
  addresses: ReadonlyMap<string, NodeAddress>;
  /** The hash ring's options, for the rings of a new membership. */
  ring: HashRingOptions;
  /** The user's callbacks, bound to the dict. */
  callbacks: Pick<MembershipHooks, 'ejected' | 'rediscovered'>;
  onFail: (() => F) | undefined;
}

/**
 * Builds the engine of a dict: the nodes and their membership, the failure answers, the
 * fleet's shared view, the hinted handoff's two sides, the reviver, the router and the scans,
 * and the observers of the ring (metrics, diagnostics channel).
 * Each collaborator owns its state; dependencies point one way, from the router down.
 */
export function createEngine<V, F>(
  o: ResolvedRingDictOptions<V, F>,
  inputs: EngineInputs<V, F>,
): RingEngine<V, F> {
  const makeNode = nodeMaker(o);
  const nodes = Object.entries(o.nodes).map(([name, node]) =>
    makeNode(name, node, inputs.addresses.get(name)!),
  );
  const core = buildCore(o, inputs, nodes);
  const { membership, failures, reviver, catchUp, placement } = core;
  const { router, changes, migration, near } = buildRouting(o, inputs, core, makeNode);
  const copies =
    o.replicas > 1 ? replicaParts(membership, router, reviver, failures, placement) : undefined;
  const payloads = payloadLimit(o, membership, migration);
  const scanner = new RingScanner(
    membership,
    failures,
    o.prefix,
    o.commandTimeout,
    copies?.scan,
    migration,
  );
  const clearer = new RingClear(
    membership,
    scanner,
    failures,
    catchUp,
    o.prefix,
    o.commandTimeout,
    copies?.scan,
    near && (() => near.dropAll()),
  );
  migration.start();
  return {
    changes,
    membership,
    failures,
    fleet: core.fleet,
    reviver,
    router: copies?.entries ?? router,
    batches: new BatchOps(router, inputs.entryKeys, inputs.codec, payloads, copies?.batches, near),
    payloads,
    placement,
    scanner,
    clearer,
    near,
    cacheView: cacheViewOf(membership, inputs.ring, o.replicas, near, migration),
  };
}

/**
 * The check of values against the nodes' `proto-max-bulk-len`: the members' and a migration's
 * own. An ejected node's unknown limit is not waited for: it takes no write until a revival,
 * whose handshake tells it. A node that does not connect within commandTimeout, as for a
 * request, is ejected (a black-holed one held every long write up to connectTimeout).
 */
function payloadLimit<V, F>(
  o: ResolvedRingDictOptions<V, F>,
  membership: RingMembership,
  migration: MigrationRoute<F>,
): PayloadLimit {
  const unknown = (node: RingNode) => node.health.alive && node.maxBulkBytes === undefined;
  const nodes = () => [...membership.all(), ...migration.ownNodes()];
  return new PayloadLimit(
    () => nodes().filter((node) => node.health.alive || node.maxBulkBytes !== undefined),
    // A migration's own node too: connecting as the migration starts, a long value written
    // before its handshake went to it unchecked (CI: the protocol error, then "not reached").
    () =>
      Promise.all(
        nodes()
          .filter(unknown)
          .map((node) =>
            node.connect(o.commandTimeout).catch((error: unknown) => {
              if (membership.isMember(node)) membership.eject(node, error);
            }),
          ),
      ),
  );
}

/** What the routing is built on: the membership, its shared view, the handoff, the reviver. */
interface EngineCore<F> {
  membership: RingMembership;
  failures: RingFailures<F>;
  fleet: FleetView;
  reviver: NodeReviver;
  recorder: HandoffRecorder;
  catchUp: HandoffCatchUp;
  placement: ReplicaPlacement;
}

/** Builds a node, not connected yet: the dict's own, a new member's, a migration's. */
type NodeMaker = (name: string, node: ResolvedRingNodeConfig, address: NodeAddress) => RingNode;

function nodeMaker<V, F>(o: ResolvedRingDictOptions<V, F>): NodeMaker {
  const trustKey = controlKey(o.prefix, 'instance');
  return (name, node, address) =>
    new RingNode(name, node.capacity, node.connection, address, o.commandTimeout, {
      trustKey,
      connectTimeout: o.connectTimeout,
    });
}

/** The nodes' membership, the fleet's shared view, both sides of the handoff, the reviver. */
function buildCore<V, F>(
  o: ResolvedRingDictOptions<V, F>,
  inputs: EngineInputs<V, F>,
  nodes: RingNode[],
): EngineCore<F> {
  // The fleet's view and the reviver are built below; the hooks reach them once they are.
  let fleet: FleetView | undefined;
  let reviver: NodeReviver | undefined;
  const membership = new RingMembership(inputs.totalHash, nodes, o, {
    ...inputs.callbacks,
    ejectedHere: (node) => void fleet?.report(node),
  });
  const failures = new RingFailures<F>(membership, o.name, inputs.onFail);
  const hintKeys = new HintKeys(o.prefix);
  const tick = o.heartbeatInterval > 0 ? o.heartbeatInterval : 1000;
  fleet = new FleetView(
    membership,
    o.prefix,
    hintKeys,
    { tick, lease: Math.max(MIN_LEASE_MS, LEASE_TICKS * tick) },
    {
      reportedOut: (node, reporters) =>
        membership.eject(node, new RingConnectionError(reportedMessage(reporters)), 'reported'),
      reportsGone: (node) => void reviver?.reviveSoon(node),
      hinted: (node, holders) => reviver?.sweepSoon(node, holders),
    },
  );
  const placement = new ReplicaPlacement(membership, o.replicas);
  const recorder = new HandoffRecorder(membership, fleet, hintKeys, o.handoffLimit, placement);
  const catchUp = new HandoffCatchUp(membership, hintKeys, recorder, catchUpOptions(o), placement);
  reviver = new NodeReviver(membership, catchUp, fleet, o);
  return { membership, failures, fleet, reviver, recorder, catchUp, placement };
}

/**
 * The router and what it consults: the metrics, the warm-up and the migration of membership
 * changes, the near cache; and the membership changes themselves.
 */
function buildRouting<V, F>(
  o: ResolvedRingDictOptions<V, F>,
  inputs: EngineInputs<V, F>,
  core: EngineCore<F>,
  makeNode: NodeMaker,
) {
  const { membership, fleet, reviver, recorder, failures, catchUp } = core;
  const metrics = observeRing(o.name, membership, o.metrics !== false);
  // With replicas a moved key's next copy is read on a miss, on the node that owned it: the
  // copies warm the new owner's keys, and writes reach copies only, not a former owner.
  const warmUp = new WarmUp(membership, o.replicas > 1 ? 0 : o.warmUpWindow);
  let changes: MembershipChange | undefined;
  const migration = new MigrationRoute<F>(
    {
      membership,
      fail: (lastError) => failures.fail(lastError),
      // A node of `from` that is one of the dict's own (same name, same connection) is shared.
      nodeFor: (name, node, address) => {
        const own = o.nodes[name];
        const member = membership.find(name);
        if (member !== undefined && own !== undefined && configOf(own) === configOf(node)) {
          return member;
        }
        const former = makeNode(name, node, address);
        metrics?.adopt(former);
        return former;
      },
      ended: (from) => changes?.migrated(from),
    },
    o.migration,
    inputs.ring,
    { prefix: o.prefix, commandTimeout: o.commandTimeout },
  );
  const near =
    o.near &&
    new NearCache(membership, o.near, {
      commandTimeout: o.commandTimeout,
      pingInterval: o.heartbeatInterval > 0 ? o.heartbeatInterval : 1000,
    });
  const base = [membership, reviver, recorder, failures, o.commandTimeout] as const;
  const routes = [warmUp, migration, metrics] as const;
  const router = near
    ? new NearRouter<F>(near, ...base, ...routes)
    : new RequestRouter<F>(...base, ...routes);
  const keysMoved = () => near?.dropAll();
  changes = new MembershipChange(
    {
      membership,
      fleet,
      catchUp,
      warmUp,
      makeNode,
      migration,
      placement: core.placement,
      keysMoved,
    },
    {
      name: o.name,
      prefix: o.prefix,
      connectTimeout: o.connectTimeout,
      ring: inputs.ring,
    },
    o.nodes,
  );
  return { router, changes, migration, near };
}

function catchUpOptions<V, F>(o: ResolvedRingDictOptions<V, F>): CatchUpOptions {
  return {
    prefix: o.prefix,
    mode: o.handoff,
    overflowPolicy: o.handoffOverflow,
    limit: o.handoffLimit,
    commandTimeout: o.commandTimeout,
  };
}

/** What a dict with replicas adds: every copy written, read in turn, counted once. */
function replicaParts<F>(
  membership: RingMembership,
  router: RequestRouter<F>,
  reviver: NodeReviver,
  failures: RingFailures<F>,
  placement: ReplicaPlacement,
) {
  return {
    entries: new ReplicaOps(membership, router, reviver, failures, placement),
    batches: new ReplicaBatches(membership, router, failures, placement),
    scan: new ReplicaScan(membership, failures, placement),
  };
}

function reportedMessage(reporters: number): string {
  return reporters === 1
    ? 'reported unreachable by another process'
    : `reported unreachable by ${reporters} other processes`;
}

/**
 * What `@RingCached` sees of the dict. Made apart: a getter made in createEngine kept its
 * scope, and with it the dict's first ring, for the dict's life (8 MB with 2 ** 22 slices).
 */
function cacheViewOf(
  membership: RingMembership,
  ring: HashRingOptions,
  replicas: number,
  near: NearCache | undefined,
  migration: MigrationRoute<unknown>,
): CacheView {
  return {
    near,
    migration: migration.configured ? migration : undefined,
    replicas,
    get earlierNodes() {
      return membership.earlierNodes;
    },
    ringOf: (nodes: NodeCapacities) => new HashRing(nodes, ring),
  };
}
