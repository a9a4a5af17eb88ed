import { afterAll, expect } from 'vitest';
import type { RingDict, RingEvent } from '../../lib/index.js';
import { serverOf } from './redis-fleet.js';
import { stopAllRedisServers, type RedisServer } from './redis-servers.js';
import { useRingDicts, type RingDictFixture } from './ring-dicts.js';

/**
 * What the bad-input suites share: dicts under the `bad:` prefix over three servers, quick
 * heartbeats and no retries, so a node wrongly taken for failed shows at once.
 */
export function useBadInputDicts(): BadInputFixture {
  const fixture = useRingDicts({ prefix: 'bad:', heartbeatInterval: 100, retryRatio: 0 });
  afterAll(async () => {
    // A server a test started for itself (the OOM test's), should that test have been cut short.
    await stopAllRedisServers();
  });
  return Object.assign(fixture, {
    ownerOf: (dict: RingDict, key: string) =>
      serverOf(fixture.fleet.servers, dict.aliveHash.locate(dict.getEntry(key))!),
  });
}

export interface BadInputFixture extends RingDictFixture {
  /** The fleet's server that owns `key` in `dict` now. */
  ownerOf(dict: RingDict, key: string): RedisServer;
}

export async function allKeys(dict: RingDict): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of dict.keys()) keys.push(key);
  return keys;
}

/** Nothing was emitted and every node is in, never ejected. */
export function expectHealthy(dict: RingDict, events: RingEvent[]): void {
  expect(events).toEqual([]);
  for (const state of dict.nodeStates()) {
    expect(state, state.name).toMatchObject({ alive: true, ejections: 0 });
  }
}
