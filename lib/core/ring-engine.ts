import type { NodeAddress } from './config/ring-config.js';
import type { ResolvedRingDictOptions } from './config/ring-dict-options.js';
import { FleetView } from './fleet/fleet-view.js';
import { HandoffCatchUp } from './handoff/handoff-catch-up.js';
import { HandoffRecorder } from './handoff/handoff-recorder.js';
import { HintKeys } from './handoff/hint-keys.js';
import type { HashRing } from './hashing/hash-ring.js';
import { controlKey } from './keys/control-keys.js';
import { RingFailures } from './membership/ring-failures.js';
import { RingMembership, type MembershipHooks } from './membership/ring-membership.js';
import { RingConnectionError } from './node/connection-errors.js';
import { NearCache } from './near/near-cache.js';
import { NearRouter } from './near/near-router.js';
import { RingNode } from './node/ring-node.js';
import { NodeReviver } from './revival/node-reviver.js';
import { RequestRouter } from './routing/request-router.js';
import { RingClear } from './scan/ring-clear.js';
import { RingScanner } from './scan/ring-scanner.js';

/** How long a report of an unreachable node lives unless renewed, at the least (ms). */
const MIN_LEASE_MS = 3_000;
/** Ticks of the fleet's view a report outlives, should its process stop renewing it. */
const LEASE_TICKS = 5;

/** The collaborators behind a RingDict, wired together (see createEngine). */
export interface RingEngine<F> {
  membership: RingMembership;
  failures: RingFailures<F>;
  fleet: FleetView;
  reviver: NodeReviver;
  router: RequestRouter<F>;
  scanner: RingScanner<F>;
  clearer: RingClear<F>;
  /** The near cache, when the `nearCache` option is on. */
  near?: NearCache;
}

/** What the dict hands its engine besides its options. */
export interface EngineInputs<F> {
  totalHash: HashRing;
  addresses: ReadonlyMap<string, NodeAddress>;
  /** The user's callbacks, bound to the dict. */
  callbacks: Pick<MembershipHooks, 'ejected' | 'rediscovered'>;
  onFail: (() => F) | undefined;
}

/**
 * Builds the engine of a dict: the nodes and their membership, the failure answers, the
 * fleet's shared view, the hinted handoff's two sides, the reviver, the router and the scans.
 * Each collaborator owns its state; dependencies point one way, from the router down.
 */
export function createEngine<V, F>(
  o: ResolvedRingDictOptions<V, F>,
  inputs: EngineInputs<F>,
): RingEngine<F> {
  const nodes = Object.entries(o.nodes).map(
    ([name, node]) =>
      new RingNode(
        name,
        node.capacity,
        node.connection,
        inputs.addresses.get(name)!,
        o.commandTimeout,
        {
          trustKey: controlKey(o.prefix, 'instance'),
          connectTimeout: o.connectTimeout,
        },
      ),
  );
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
  const recorder = new HandoffRecorder(membership, fleet, hintKeys, o.handoffLimit);
  const catchUp = new HandoffCatchUp(membership, hintKeys, recorder, {
    prefix: o.prefix,
    mode: o.handoff,
    overflowPolicy: o.handoffOverflow,
    limit: o.handoffLimit,
    commandTimeout: o.commandTimeout,
  });
  reviver = new NodeReviver(membership, catchUp, fleet, o);
  const near =
    o.near &&
    new NearCache(membership, o.near, {
      commandTimeout: o.commandTimeout,
      pingInterval: o.heartbeatInterval > 0 ? o.heartbeatInterval : 1000,
    });
  const base = [membership, reviver, recorder, failures, o.commandTimeout] as const;
  const router = near ? new NearRouter<F>(near, ...base) : new RequestRouter<F>(...base);
  const scanner = new RingScanner(membership, failures, o.prefix, o.commandTimeout);
  const clearer = new RingClear(
    membership,
    scanner,
    failures,
    catchUp,
    o.prefix,
    o.commandTimeout,
    near && (() => near.dropAll()),
  );
  return { membership, failures, fleet, reviver, router, scanner, clearer, near };
}

function reportedMessage(reporters: number): string {
  return reporters === 1
    ? 'reported unreachable by another process'
    : `reported unreachable by ${reporters} other processes`;
}
