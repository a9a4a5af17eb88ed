import { describe, expect, it } from 'vitest';
import { durationMs, durationSeconds } from '../../lib/core/config/duration.js';
import { RingConfigError, RingDict } from '../../lib/index.js';

/**
 * Durations: a number in the option's unit, or a string with its unit ('250ms', '30s', '5m',
 * '1h'); anything else is a RingConfigError naming the option. `expire` of a RingDict takes
 * them too (the dict connects lazily here: no server is needed to build one).
 */

const nodes = { a: { capacity: 1, connection: 'redis://127.0.0.1:1' } };

describe('durations', () => {
  it.each<[unknown, number]>([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['.5s', 500],
    [2, 2_000],
    [0.25, 250],
  ])('%o is %d ms', (value, ms) => {
    expect(durationMs(value, 'ttl')).toBe(ms);
  });

  it('a number is in the unit the option says', () => {
    expect(durationMs(50, 'softTimeout', { numberUnit: 'ms' })).toBe(50);
    expect(durationMs('50ms', 'softTimeout', { numberUnit: 'ms' })).toBe(50);
    expect(durationSeconds('1500ms', 'grace')).toBe(1.5);
  });

  it.each<[unknown]>([
    ['30'],
    ['30 s'],
    [' 30s'],
    ['30sec'],
    ['30d'],
    ['-5s'],
    ['1e3ms'],
    ['s'],
    [''],
    ['0s'],
    [0],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [{ seconds: 3 }],
  ])('%o fails naming the option', (value) => {
    expect(() => durationMs(value, '@RingCached A.b: grace')).toThrow(RingConfigError);
    expect(() => durationMs(value, '@RingCached A.b: grace')).toThrow(
      /^@RingCached A\.b: grace: expected a duration > 0 — a number of seconds or a string such as '250ms', '30s', '5m', '1h' — got /,
    );
  });

  it('zero where the option allows it', () => {
    expect(durationMs(0, 'graceBackoff', { allowZero: true })).toBe(0);
    expect(durationMs('0ms', 'graceBackoff', { allowZero: true })).toBe(0);
  });
});

describe('RingDict expire as a duration', () => {
  it.each<[unknown, number]>([
    ['250ms', 0.25],
    ['5m', 300],
    [60, 60],
  ])('%o is %d seconds', (expire, seconds) => {
    const dict = new RingDict({ nodes, expire: expire as never, lazyConnect: true });
    expect(dict.expire).toBe(seconds);
    void dict.close();
  });

  it('a bad duration fails at construction, naming the group and the option', () => {
    expect(
      () =>
        new RingDict({ nodes, name: 'sessions', expire: '5 minutes' as never, lazyConnect: true }),
    ).toThrow(/^group "sessions": expire: expected a duration > 0 .* got "5 minutes"$/);
    // A number keeps the message it always had.
    expect(() => new RingDict({ nodes, expire: -5, lazyConnect: true })).toThrow(
      /^expire: expected a number of seconds > 0, got -5$/,
    );
  });
});
