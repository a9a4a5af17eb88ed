import { afterEach, describe, expect, it, vi } from 'vitest';
import { nodeAddress } from '../../lib/core/config/ring-config.js';
import { HashRing } from '../../lib/core/hashing/hash-ring.js';
import type { RingEvent } from '../../lib/core/membership/ring-events.js';
import { RingMembership } from '../../lib/core/membership/ring-membership.js';
import { RingNode } from '../../lib/core/node/ring-node.js';

/*
 * The membership without a server: nodes are never connected (their clients are lazy), so
 * ejection and rediscovery are driven by hand, as the router and the reviver drive them.
 */
const NAMES = ['node0', 'node1', 'node2'];

function makeMembership(hooks: ConstructorParameters<typeof RingMembership>[3] = {}) {
  const ring = new HashRing(Object.fromEntries(NAMES.map((name) => [name, 1])));
  const nodes = NAMES.map((name, i) => {
    // Ports nobody listens on: nothing here opens a connection.
    const connection = { host: '127.0.0.1', port: 1 + i };
    return new RingNode(name, 1, connection, nodeAddress(connection, `node "${name}"`), 100);
  });
  const membership = new RingMembership(
    ring,
    nodes,
    { commandTimeout: 100, connectTimeout: 100 },
    hooks,
  );
  const events: RingEvent[] = [];
  membership.events$.subscribe((event) => events.push(event));
  opened.push(membership);
  return { membership, events, ring };
}

const opened: RingMembership[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((membership) => membership.close()));
});

describe('RingMembership', () => {
  it('an ejection takes the node out of the alive ring once, with one event and one callback', () => {
    const ejected: string[] = [];
    const { membership, events } = makeMembership({ ejected: (node) => ejected.push(node) });
    const node1 = membership.node('node1');
    membership.eject(node1, new Error('connect ECONNREFUSED 127.0.0.1:2'));
    membership.eject(node1, new Error('connect ECONNREFUSED 127.0.0.1:2'));
    expect(membership.aliveHash.nodes).toEqual(['node0', 'node2']);
    expect(membership.totalHash.nodes).toEqual(NAMES);
    expect(membership.anyEjected).toBe(true);
    expect(ejected).toEqual(['node1']);
    expect(events.map((e) => [e.type, e.node, e.error?.message])).toEqual([
      ['ejected', 'node1', 'connect ECONNREFUSED 127.0.0.1:2'],
    ]);
    expect(membership.nodeStates().map((s) => [s.name, s.alive])).toEqual([
      ['node0', true],
      ['node1', false],
      ['node2', true],
    ]);
  });

  it("only the ejected node's entries move, and a rediscovery restores the placement exactly", () => {
    const rediscovered: string[] = [];
    const { membership, events, ring } = makeMembership({
      rediscovered: (node) => rediscovered.push(node),
    });
    const entries = Array.from({ length: 2_000 }, (_, i) => `k${i}`);
    const before = entries.map((entry) => ring.locate(entry));
    membership.eject(membership.node('node0'), new Error('boom'));
    entries.forEach((entry, i) => {
      const now = membership.pick(entry)!.name;
      if (before[i] !== 'node0') expect(now).toBe(before[i]);
      else expect(now).not.toBe('node0');
      // The owner by the total ring stays the same.
      expect(membership.ownerOf(entry).name).toBe(before[i]);
    });
    membership.rediscover(membership.node('node0'));
    membership.rediscover(membership.node('node0'));
    expect(entries.map((entry) => membership.pick(entry)!.name)).toEqual(before);
    expect(rediscovered).toEqual(['node0']);
    expect(events.map((e) => e.type)).toEqual(['ejected', 'rediscovered']);
    expect(membership.anyEjected).toBe(false);
  });

  it('"unavailable" fires once when the last node goes, and again only after one came back', () => {
    const { membership, events } = makeMembership();
    for (const name of NAMES) membership.eject(membership.node(name), new Error(`${name} down`));
    membership.signalUnavailable();
    expect(membership.pick('k')).toBeUndefined();
    membership.rediscover(membership.node('node1'));
    membership.eject(membership.node('node1'), new Error('down again'));
    expect(events.map((e) => e.type)).toEqual([
      'ejected',
      'ejected',
      'ejected',
      'unavailable',
      'rediscovered',
      'ejected',
      'unavailable',
    ]);
  });

  it('nextOwner() skips every node that failed this request', () => {
    const { membership } = makeMembership();
    const entry = 'some-entry';
    const first = membership.pick(entry)!;
    const second = membership.nextOwner(entry, [first])!;
    expect(second).not.toBe(first);
    const third = membership.nextOwner(entry, [first, second])!;
    expect([first, second]).not.toContain(third);
    expect(membership.nextOwner(entry, [first, second, third])).toBeUndefined();
  });

  it('a callback that throws is reported as a warning, and the transition still happens', () => {
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const { membership, events } = makeMembership({
        ejected: () => {
          throw new Error('callback bug');
        },
      });
      membership.eject(membership.node('node2'), new Error('down'));
      expect(membership.aliveHash.nodes).toEqual(['node0', 'node1']);
      expect(events).toHaveLength(1);
      expect(warning).toHaveBeenCalledWith('ring-redis: a node callback threw: callback bug');
    } finally {
      warning.mockRestore();
    }
  });

  it('after close() nothing changes and the events complete', async () => {
    const { membership, events } = makeMembership();
    let completed = false;
    membership.events$.subscribe({ complete: () => (completed = true) });
    await membership.close();
    expect(membership.closed).toBe(true);
    membership.eject(membership.node('node0'), new Error('late'));
    expect(membership.aliveHash.size).toBe(3);
    expect(events).toEqual([]);
    expect(completed).toBe(true);
  });
});
