import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryMetrics } from '../helpers/metric-reader.js';
import { useRingDicts } from '../helpers/ring-dicts.js';

/**
 * Without an OpenTelemetry SDK the package records nothing: a dict built while none is
 * registered keeps no instrument, even once one is (OpenTelemetry's global provider has no
 * proxy, which is why an app starts its SDK first); a dict built afterwards records.
 */

const fixture = useRingDicts({}, { servers: 2 });
let sdk: InMemoryMetrics | undefined;

afterAll(async () => {
  await sdk?.shutdown();
});

describe('metrics without an SDK', () => {
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
