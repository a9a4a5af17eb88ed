import { describe, expect, it } from 'vitest';
import { nodeAddress } from '../../lib/core/config/ring-config.js';
import { RingNode } from '../../lib/core/node/ring-node.js';
import { useRingFleet } from '../helpers/ring-fleet.js';

const ring = useRingFleet(1);

/** A RingNode on the fleet's server, closed after the test. */
function nodeOnServer(commandTimeout: number): RingNode {
  const connection = { host: '127.0.0.1', port: ring.fleet.servers[0].port };
  const node = new RingNode(
    'a',
    1,
    connection,
    nodeAddress(connection, 'node "a"'),
    commandTimeout,
  );
  ring.track({ close: () => node.close(commandTimeout) });
  return node;
}

describe('RingNode.connect', () => {
  it('opens a fresh connection after an attempt abandoned on a hung server', async () => {
    const node = nodeOnServer(200);
    ring.fleet.servers[0].hang();
    await expect(node.connect(200)).rejects.toThrow('no answer within 200 ms while connecting');
    ring.fleet.servers[0].resume();
    // The abandoned connection must not settle this attempt: it starts its own and succeeds.
    await expect(node.connect(2_000)).resolves.toBeUndefined();
    expect(node.ready).toBe(true);
    expect(await node.client.ping()).toBe('PONG');
  }, 10_000);

  it('shares one attempt between concurrent callers', async () => {
    const node = nodeOnServer(500);
    const first = node.connect(500);
    expect(node.connect(500)).toBe(first);
    await first;
    expect(node.ready).toBe(true);
  }, 10_000);
});
