import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, describe, expect, it } from 'vitest';
import { RING_EVENT_CHANNEL, type RingEventMessage } from '../../lib/index.js';
import { SETTLE } from '../helpers/failure-scenes.js';
import { InMemoryMetrics } from '../helpers/metric-reader.js';
import { collect, saw, useRingDicts } from '../helpers/ring-dicts.js';
import { until } from '../helpers/wait.js';

/**
 * Without an OpenTelemetry SDK the package records nothing: a dict built while none is
 * registered keeps no instrument, even once one is (OpenTelemetry's global provider has no
 * proxy, which is why an app starts its SDK first); a dict built afterwards records. The
 * diagnostics channel needs no SDK.
 */

const fixture = useRingDicts({}, { servers: 2 });
let sdk: InMemoryMetrics | undefined;

afterAll(async () => {
  await sdk?.shutdown();
});

describe('metrics without an SDK', () => {
  it('ring events still reach the diagnostics channel', async () => {
    const messages: RingEventMessage[] = [];
    const listener = (message: unknown) => messages.push(message as RingEventMessage);
    subscribe(RING_EVENT_CHANNEL, listener);
    try {
      const dict = fixture.dict<string>({ name: 'plain', heartbeatInterval: 50 });
      await dict.connect();
      const events = collect(dict);
      await fixture.serverOf('node1').kill();
      await until(() => saw(events, 'ejected', 'node1') === 1, SETTLE);
      expect(messages.filter((m) => m.group === 'plain').map((m) => m.event)).toEqual(events);
    } finally {
      unsubscribe(RING_EVENT_CHANNEL, listener);
    }
  });

  it('a dict built before any SDK is registered records nothing; one built after does', async () => {
    const before = fixture.dict<string>({ name: 'before' });
    await before.set('a', 'b');
    expect(await before.get('a')).toBe('b');

    sdk = InMemoryMetrics.register();
    await before.set('c', 'd');
    expect(await before.get('c')).toBe('d');
    const after = fixture.dict<string>({ name: 'after' });
    await after.set('a', 'b');

    const groups = new Set<unknown>();
    for (const metric of (await sdk.read()).values()) {
      for (const point of metric.dataPoints) groups.add(point.attributes.group);
    }
    expect([...groups]).toEqual(['after']);
  });
});
