import { describe, expect, it } from 'vitest';
import { NodeHealth } from '../../lib/core/node/node-health.js';

describe('NodeHealth', () => {
  it('each transition happens once, however many requests report it', () => {
    const health = new NodeHealth('node0');
    const at = new Date('2026-01-01T00:00:00Z');
    expect(health.eject('connect ECONNREFUSED 127.0.0.1:1', at)).toBe(true);
    expect(health.eject('connect ECONNREFUSED 127.0.0.1:1')).toBe(false);
    expect(health.snapshot()).toEqual({
      name: 'node0',
      alive: false,
      ejectedAt: at,
      lastError: 'connect ECONNREFUSED 127.0.0.1:1',
      ejections: 1,
      rediscoveries: 0,
    });
    expect(health.rediscover()).toBe(true);
    expect(health.rediscover()).toBe(false);
    // History stays: when it was last out, and why.
    expect(health.snapshot()).toMatchObject({
      alive: true,
      ejectedAt: at,
      ejections: 1,
      rediscoveries: 1,
    });
  });

  it('a later ejection records the latest error and time', () => {
    const health = new NodeHealth('node0');
    health.eject('first');
    health.rediscover();
    const at = new Date('2026-02-02T00:00:00Z');
    health.eject('no reply within 500 ms', at);
    expect(health.snapshot()).toMatchObject({
      lastError: 'no reply within 500 ms',
      ejectedAt: at,
      ejections: 2,
    });
  });

  it('a snapshot is a copy: changing it changes nothing', () => {
    const health = new NodeHealth('node0');
    const snapshot = health.snapshot();
    snapshot.alive = false;
    expect(health.snapshot().alive).toBe(true);
  });
});
