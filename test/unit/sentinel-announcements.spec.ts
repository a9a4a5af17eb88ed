import { describe, expect, it, vi } from 'vitest';
import { internals } from '../helpers/internals.js';

/*
 * A Sentinel node resolves the host names sentinels announce before it compares them with the
 * master it is connected to. Lookups can finish out of order (a slow nameserver for one
 * name): only the latest announcement may act. The resolver is replaced here so that one
 * name is slow; the node's socket address is set by hand, as no server is needed.
 */
vi.mock('node:dns/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:dns/promises')>();
  return {
    ...real,
    lookup: async (host: string, options: unknown) => {
      if (host === 'slow.test') await new Promise((resolve) => setTimeout(resolve, 300));
      if (host.endsWith('.test')) return [{ address: '127.0.0.1', family: 4 }];
      return real.lookup(host, options as never);
    },
  };
});

const { nodeAddress } = await import('../../lib/core/ring-config.js');
const { RingNode } = await import('../../lib/core/ring-node.js');

describe('announced master names, resolved out of order', () => {
  it('a slow lookup of an older announcement does not make the node refuse the current master', async () => {
    const connection = { sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm' };
    const node = new RingNode('ha', 1, connection, nodeAddress(connection, 'node "ha"'), 200);
    const inside = internals(node);
    const connectedTo = (port: number) => {
      (node.client as unknown as { stream: unknown }).stream = {
        remoteAddress: '127.0.0.1',
        remotePort: port,
        destroy: () => undefined,
      };
      inside.reachedMaster();
    };
    try {
      connectedTo(7001);
      inside.masterSwitched('slow.test:7002'); // 7001 → 7002, resolved late
      connectedTo(7002);
      inside.masterSwitched('fast.test:7003'); // 7002 → 7003
      await new Promise((resolve) => setTimeout(resolve, 20));
      connectedTo(7003);
      expect(node.health.master).toBe('127.0.0.1:7003');
      await new Promise((resolve) => setTimeout(resolve, 400)); // the old lookup completes
      connectedTo(7003); // a reconnect to the current master is accepted
      expect(inside.refused).toBeUndefined();
      expect(node.health.master).toBe('127.0.0.1:7003');
    } finally {
      await node.close(100);
    }
  });
});
