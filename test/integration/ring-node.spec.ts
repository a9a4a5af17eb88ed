import { describe, expect, it, vi } from 'vitest';
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
    const opened = vi.spyOn(node.client, 'connect');
    await Promise.all([node.connect(500), node.connect(500), node.connect(2_000)]);
    expect(opened).toHaveBeenCalledTimes(1);
    expect(node.ready).toBe(true);
  }, 10_000);

  it('a caller joining a longer connect does not wait past its own deadline', async () => {
    const node = nodeOnServer(200);
    ring.fleet.servers[0].hang();
    try {
      const long = node.connect(2_000);
      const started = performance.now();
      await expect(node.connect(200)).rejects.toThrow('no answer within 200 ms while connecting');
      expect(performance.now() - started).toBeLessThan(600);
      ring.fleet.servers[0].resume();
      await expect(long).resolves.toBeUndefined();
    } finally {
      ring.fleet.servers[0].resume();
    }
  }, 10_000);

  it('greets a fresh connection: a database the server refused is a connection failure', async () => {
    const connection = { host: '127.0.0.1', port: ring.fleet.servers[0].port, db: 99 };
    const node = new RingNode('a', 1, connection, nodeAddress(connection, 'node "a"'), 500);
    ring.track({ close: () => node.close(500) });
    await expect(node.connect(500)).rejects.toThrow(
      /database 99 was refused by the server \(SELECT failed; the connection is on database 0\)/,
    );
    expect(node.ready).toBe(false);
  }, 10_000);
});
