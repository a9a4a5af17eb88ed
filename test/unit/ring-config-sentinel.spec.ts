import { describe, expect, it } from 'vitest';
import { NodeHealth } from '../../lib/core/node/node-health.js';
import { nodeAddress, validateNodes } from '../../lib/core/config/ring-config.js';
import { RingNode } from '../../lib/core/node/ring-node.js';
import { RingConfigError, RingDict, type RingNodesConfig } from '../../lib/index.js';

const PASSWORD = 'data-pass-s3cret';
const SENTINEL_PASSWORD = 'sentinel-pass-s3cret';

function sentinelNode(
  name = 'mymaster',
  ports = [26379, 26380, 26381],
  extra: Record<string, unknown> = {},
) {
  return {
    capacity: 1,
    connection: {
      sentinels: ports.map((port) => ({ host: '10.0.0.1', port })),
      name,
      password: PASSWORD,
      sentinelPassword: SENTINEL_PASSWORD,
      ...extra,
    },
  };
}

/** The RingConfigError `validateNodes` throws for `nodes`, checked to carry no password. */
function configError(nodes: unknown, group = 'cache'): string {
  try {
    validateNodes(nodes, group);
  } catch (error) {
    expect(error).toBeInstanceOf(RingConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain(PASSWORD);
    expect(message).not.toContain(SENTINEL_PASSWORD);
    return message;
  }
  throw new Error('expected a RingConfigError');
}

describe('a Sentinel node in the configuration', () => {
  it('is accepted next to plain nodes, labelled without credentials', () => {
    const addresses = validateNodes(
      {
        plain: { capacity: 1, connection: 'redis://:pw@10.0.0.2:6379' },
        ha: sentinelNode(),
      },
      'cache',
    );
    const ha = addresses.get('ha')!;
    expect(ha.sentinel).toBe('mymaster');
    expect(ha.label).toBe(
      'sentinel group "mymaster" (10.0.0.1:26379, 10.0.0.1:26380, 10.0.0.1:26381)',
    );
    expect(ha.secrets).toEqual([PASSWORD, SENTINEL_PASSWORD]);
    expect(JSON.stringify({ ...ha, secrets: undefined })).not.toMatch(/s3cret/);
    expect(addresses.get('plain')!.sentinel).toBeUndefined();
  });

  it('needs at least one sentinel', () => {
    expect(configError({ ha: sentinelNode('mymaster', []) })).toBe(
      'group "cache", node "ha".connection.sentinels is empty: a Sentinel node needs at least one sentinel { host, port }',
    );
    expect(
      configError({ ha: { capacity: 1, connection: { sentinels: 'localhost:26379', name: 'm' } } }),
    ).toMatch(/^group "cache", node "ha"\.connection\.sentinels: expected an array/);
  });

  it('needs a host and a port for every sentinel', () => {
    const noHost = { capacity: 1, connection: { sentinels: [{ port: 26379 }], name: 'm' } };
    expect(configError({ ha: noHost })).toBe(
      'group "cache", node "ha".connection.sentinels[0]: host is missing (expected { host, port })',
    );
    const noPort = {
      capacity: 1,
      connection: { sentinels: [{ host: 'a', port: 1 }, { host: 'b' }], name: 'm' },
    };
    expect(configError({ ha: noPort })).toBe(
      'group "cache", node "ha".connection.sentinels[1]: port must be an integer in 1..65535, got undefined',
    );
    const badPort = { capacity: 1, connection: { sentinels: [{ host: 'a', port: '26379' }] } };
    expect(configError({ ha: badPort })).toMatch(/sentinels\[0\]: port .* got "26379"/);
    expect(
      configError({ ha: { capacity: 1, connection: { sentinels: [null], name: 'm' } } }),
    ).toMatch(/sentinels\[0\]: host is missing/);
  });

  it('needs the master group name', () => {
    const { connection } = sentinelNode();
    const { name: _name, ...unnamed } = connection;
    expect(configError({ ha: { capacity: 1, connection: unnamed } })).toBe(
      `group "cache", node "ha".connection.name is missing: a Sentinel node needs the name of its master group (e.g. 'mymaster')`,
    );
    expect(configError({ ha: sentinelNode('') })).toMatch(/connection\.name is missing/);
  });

  it("refuses role 'slave': the ring writes to every node", () => {
    expect(configError({ ha: sentinelNode('mymaster', [26379], { role: 'slave' }) })).toBe(
      `group "cache", node "ha".connection.role must be 'master' (the ring writes to every node), got "slave"`,
    );
    expect(() =>
      validateNodes({ ha: sentinelNode('mymaster', [26379], { role: 'master' }) }),
    ).not.toThrow();
  });

  it('treats two nodes on the same master group as duplicates', () => {
    // Same name, same sentinels in another order.
    expect(configError({ a: sentinelNode('m', [1, 2, 3]), b: sentinelNode('m', [3, 2, 1]) })).toBe(
      'group "cache", node "b": connection sentinel group "m" (10.0.0.1:3, 10.0.0.1:2, 10.0.0.1:1) is the same Sentinel master group as node "a" (duplicate address: they share a sentinel and the name "m")',
    );
    // One sentinel in common is enough: a sentinel monitors one master per name.
    expect(configError({ a: sentinelNode('m', [1, 2]), b: sentinelNode('m', [2, 3]) })).toMatch(
      /node "b": .* same Sentinel master group as node "a"/,
    );
    // The same sentinels watching two masters, or one master's two databases: two nodes.
    expect(() =>
      validateNodes({ a: sentinelNode('m1', [1, 2]), b: sentinelNode('m2', [1, 2]) }),
    ).not.toThrow();
    expect(() =>
      validateNodes({
        a: sentinelNode('m', [1], { db: 0 }),
        b: sentinelNode('m', [1], { db: 1 }),
      }),
    ).not.toThrow();
    // Other sentinels, same name: another deployment.
    expect(() =>
      validateNodes({ a: sentinelNode('m', [1, 2]), b: sentinelNode('m', [3, 4]) }),
    ).not.toThrow();
  });

  it('fails RingDict construction with a RingConfigError naming group, node and field', () => {
    const nodes: RingNodesConfig = {
      plain: { capacity: 1, connection: { host: '127.0.0.1', port: 1 } },
      ha: sentinelNode('mymaster', []) as RingNodesConfig[string],
    };
    expect(() => new RingDict({ nodes, name: 'sessions' })).toThrow(
      new RingConfigError(
        'group "sessions", node "ha".connection.sentinels is empty: a Sentinel node needs at least one sentinel { host, port }',
      ),
    );
  });
});

describe('a Sentinel node at run time (no server needed)', () => {
  it('describes "no sentinel answered" without ioredis wording or credentials', async () => {
    const { connection } = sentinelNode('mymaster', [26379, 26380]);
    const address = nodeAddress(connection, 'node "ha"');
    const node = new RingNode('ha', 1, connection, address, 200);
    try {
      expect(
        node.describe(
          new Error(
            'All sentinels are unreachable and retry is disabled. Last error: Connection is closed.',
          ),
        ),
      ).toBe('no sentinel of "mymaster" answered (10.0.0.1:26379, 10.0.0.1:26380)');
      expect(
        node.describe(
          new Error(
            `All sentinels are unreachable and retry is disabled. Last error: WRONGPASS ${SENTINEL_PASSWORD}`,
          ),
        ),
      ).toBe(
        'no sentinel of "mymaster" answered (10.0.0.1:26379, 10.0.0.1:26380; last error: WRONGPASS ***)',
      );
      expect(node.describe(new Error('All sentinels are unreachable and retry is disabled.'))).toBe(
        'no sentinel of "mymaster" answered (10.0.0.1:26379, 10.0.0.1:26380)',
      );
      expect(node.sentinel).toBe('mymaster');
      expect(node.health.snapshot()).toEqual({
        name: 'ha',
        alive: true,
        ejections: 0,
        rediscoveries: 0,
        sentinel: 'mymaster',
        failovers: 0,
      });
    } finally {
      await node.close(10);
    }
  });

  it('tells a failover from a reconnection to the same master', () => {
    const health = new NodeHealth('ha', 'mymaster');
    expect(health.connectedTo('10.0.0.1:7000')).toBeUndefined();
    // Reconnected to the same master: nothing happened.
    expect(health.connectedTo('10.0.0.1:7000')).toBeUndefined();
    expect(health.eject('connect ECONNREFUSED 10.0.0.1:7000')).toBe(true);
    expect(health.failoverSinceEjection()).toBeUndefined();
    const at = new Date('2026-01-01T00:00:00Z');
    expect(health.connectedTo('10.0.0.2:7000', at)).toEqual({
      from: '10.0.0.1:7000',
      to: '10.0.0.2:7000',
      at,
    });
    expect(health.rediscover()).toBe(true);
    expect(health.failoverSinceEjection()).toEqual({ from: '10.0.0.1:7000', to: '10.0.0.2:7000' });
    expect(health.snapshot()).toMatchObject({
      alive: true,
      sentinel: 'mymaster',
      master: '10.0.0.2:7000',
      failovers: 1,
      lastFailover: { from: '10.0.0.1:7000', to: '10.0.0.2:7000', at },
    });
    // The next ejection starts from the new master: back on it is no failover.
    health.eject('connect ECONNREFUSED 10.0.0.2:7000');
    health.connectedTo('10.0.0.2:7000');
    health.rediscover();
    expect(health.failoverSinceEjection()).toBeUndefined();
    // A plain node reports none of this.
    expect(new NodeHealth('plain').snapshot()).toEqual({
      name: 'plain',
      alive: true,
      ejections: 0,
      rediscoveries: 0,
    });
  });
});

describe('a Sentinel node told of a failover (stubbed socket, no server)', () => {
  /** Pretends the client's socket is connected to `port` and the ready check passed. */
  function readyOn(node: RingNode, port: number): void {
    Object.defineProperty(node.client, 'stream', {
      // close() destroys the socket, so the stub has that too.
      value: { remoteAddress: '127.0.0.1', remotePort: port, destroy: () => undefined },
      configurable: true,
    });
    node.client.emit('ready');
  }

  function switched(node: RingNode, to: string): void {
    node.sentinelMaster!.announced(to);
  }

  it('leaves the old master at once and refuses to go back to it while sentinels catch up', async () => {
    const connection = { sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm' };
    const node = new RingNode(
      'ha',
      1,
      { ...connection, failoverDetector: false },
      nodeAddress(connection, 'node "ha"'),
      200,
    );
    const told: string[] = [];
    node.onMasterSwitch = (error) => told.push(error.message);
    try {
      readyOn(node, 7000);
      expect(node.health.master).toBe('127.0.0.1:7000');
      // Announced while the connection is up: the ring is told, with the reason.
      Object.defineProperty(node.client, 'status', { value: 'ready', configurable: true });
      switched(node, '127.0.0.1:7001');
      expect(told).toEqual([
        'Sentinel moved the master of "m" from 127.0.0.1:7000 to 127.0.0.1:7001',
      ]);
      // Another sentinel announcing the same failover changes nothing more.
      switched(node, '127.0.0.1:7001');
      expect(told).toHaveLength(1);
      // A lagging sentinel sends the reconnect back to the old master: refused.
      Object.defineProperty(node.client, 'status', { value: 'connecting', configurable: true });
      readyOn(node, 7000);
      expect(node.health.master).toBe('127.0.0.1:7000');
      expect(node.health.failovers).toBe(0);
      expect(node.describe(new Error('Connection is closed.'))).toBe(
        'connection closed (Sentinel moved the master of "m" from 127.0.0.1:7000 to 127.0.0.1:7001; a sentinel still names 127.0.0.1:7000)',
      );
      // The new master is accepted, and it is a failover.
      readyOn(node, 7001);
      expect(node.health.snapshot()).toMatchObject({
        master: '127.0.0.1:7001',
        failovers: 1,
        lastFailover: { from: '127.0.0.1:7000', to: '127.0.0.1:7001' },
      });
      // Back on the old address later (a failback) is accepted: the refusal was for that switch.
      readyOn(node, 7000);
      expect(node.health.master).toBe('127.0.0.1:7000');
      expect(node.health.failovers).toBe(2);
    } finally {
      await node.close(10);
    }
  });
});

describe('Sentinel user names', () => {
  it('are scrubbed like passwords from what a node reports', async () => {
    const DATA_USER = 'data-user-7a1';
    const SENTINEL_USER = 'sentinel-user-c9e';
    const { connection } = sentinelNode('mymaster', [26379], {
      username: DATA_USER,
      sentinelUsername: SENTINEL_USER,
    });
    const address = nodeAddress(connection, 'node "ha"');
    expect(address.secrets).toEqual([PASSWORD, SENTINEL_PASSWORD, DATA_USER, SENTINEL_USER]);
    const node = new RingNode('ha', 1, connection, address, 200);
    try {
      // A server that does not know AUTH echoes its arguments: the user name and the password.
      const echo = (user: string, password: string) =>
        `ERR unknown command 'auth', with args beginning with: '${user}' '${password}'`;
      expect(
        node.describe(
          new Error(
            `All sentinels are unreachable and retry is disabled. Last error: ${echo(SENTINEL_USER, SENTINEL_PASSWORD)}`,
          ),
        ),
      ).toBe(
        `no sentinel of "mymaster" answered (10.0.0.1:26379; last error: ${echo('***', '***')})`,
      );
      expect(node.describe(new Error(echo(DATA_USER, PASSWORD)))).toBe(echo('***', '***'));
    } finally {
      await node.close(10);
    }
  });
});
