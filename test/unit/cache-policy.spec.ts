import { describe, expect, it } from 'vitest';
import { RingConfigError } from '../../lib/index.js';
import { resolvePolicy, type RingCacheBehaviour } from '../../lib/nest/ring-cached/cache-policy.js';

/**
 * The options `@RingCached` and `wrap` share, checked and resolved: durations with units,
 * defaults, and the options that need another one. Every message names the method and the
 * option.
 */

const where = '@RingCached Weather.forecast: ';

/** `groupExpire` null: the group has no expire. */
function resolve(options: unknown, groupExpire: number | null = 60) {
  return resolvePolicy(options as RingCacheBehaviour, where, groupExpire ?? undefined);
}

describe('cached-call options', () => {
  it('none: a plain memo, the group’s expire, no envelope', () => {
    expect(resolve({})).toMatchObject({
      ttl: undefined,
      graceMs: 0,
      graceBackoffMs: 10_000,
      softTimeoutMs: undefined,
      refreshAhead: undefined,
      lockMs: undefined,
      expiring: false,
      resilient: false,
    });
  });

  it('durations: a number of seconds, or a string with its unit; softTimeout and lock.ttl in ms', () => {
    expect(
      resolve({
        ttl: '250ms',
        grace: '5m',
        graceBackoff: 2,
        softTimeout: 50,
        lock: { ttl: '2s' },
      }),
    ).toMatchObject({
      ttl: 0.25,
      graceMs: 300_000,
      graceBackoffMs: 2_000,
      softTimeoutMs: 50,
      lockMs: 2_000,
      expiring: true,
      resilient: true,
    });
    expect(resolve({ ttl: 30, softTimeout: '1s', grace: 1 }).softTimeoutMs).toBe(1_000);
    expect(resolve({ lock: true }).lockMs).toBe(5_000);
    expect(resolve({ lock: false }).lockMs).toBeUndefined();
    expect(resolve({ refreshAhead: 0.5 })).toMatchObject({ expiring: true, resilient: true });
  });

  it.each<[unknown, RegExp]>([
    [{ ttl: '30 seconds' }, /ttl: expected a duration > 0 .* got "30 seconds"$/],
    [{ ttl: -1 }, /ttl: expected a number of seconds > 0, got -1$/],
    [{ grace: '1d' }, /grace: expected a duration > 0 .* got "1d"$/],
    [{ grace: 5, graceBackoff: -1 }, /graceBackoff: expected a duration/],
    [{ softTimeout: 50 }, /softTimeout needs grace/],
    [{ graceBackoff: 1 }, /graceBackoff needs grace/],
    [
      { grace: 5, softTimeout: 'soon' },
      /softTimeout: expected a duration > 0 — a number of milliseconds/,
    ],
    [{ refreshAhead: 1 }, /refreshAhead: expected a number between 0 and 1 \(exclusive\), got 1$/],
    [{ refreshAhead: 0 }, /refreshAhead: expected a number between 0 and 1/],
    [{ lock: 'yes' }, /lock: expected a boolean or \{ ttl \}, got "yes"$/],
    [{ lock: { ttl: 0 } }, /lock\.ttl: expected a duration > 0/],
    [{ lock: { tll: 5 } }, /lock: unknown option "tll"; the option is ttl$/],
    // Past Redis' clock: every write (PX ttl + grace) or every lock (PX ttl) failed at the server.
    [{ grace: 1e16 }, /grace: at most 1e12 seconds, got 10000000000000000$/],
    [{ grace: '1000000000000000h' }, /grace: at most 1e12 seconds, got "1000000000000000h"$/],
    [{ lock: { ttl: 1e20 } }, /lock\.ttl: at most 1e12 seconds, got 100000000000000000000$/],
    // Each within the ceiling, not together: an entry in grace is kept ttl + grace.
    [{ grace: 1e12 }, /grace: ttl \+ grace is at most 1e12 seconds .*, got 60 \+ 1000000000000$/],
    [
      { ttl: 1e12, grace: '1h' },
      /grace: ttl \+ grace is at most 1e12 seconds .*, got 1000000000000 \+ 3600$/,
    ],
    [
      { codec: 'string' },
      /codec: expected 'json' or a named codec of the core such as 'msgpack', got "string"$/,
    ],
    [{ codec: 'yaml' }, /codec: expected 'json' or a named codec/],
    [{ cacheNullish: 1 }, /cacheNullish: expected a boolean, got 1$/],
  ])('%o fails, naming the method and the option', (options, message) => {
    expect(() => resolve(options)).toThrow(RingConfigError);
    expect(() => resolve(options)).toThrow(message);
    expect(() => resolve(options)).toThrow(/^@RingCached Weather\.forecast: /);
  });

  it('grace and refreshAhead need a ttl: the option or the group’s expire', () => {
    expect(() => resolve({ grace: 5 }, null)).toThrow(
      /^@RingCached Weather\.forecast: grace needs a ttl: give the option ttl, or the group an expire$/,
    );
    expect(() => resolve({ refreshAhead: 0.5 }, null)).toThrow(/refreshAhead needs a ttl/);
    expect(resolve({ grace: 5, ttl: 1 }, null).graceMs).toBe(5_000);
  });
});
