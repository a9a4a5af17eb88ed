import { RingConfigError } from '../errors.js';
import { shown } from './option-checks.js';

/** A duration with its unit: `'250ms'`, `'30s'`, `'5m'`, `'1h'` (fractions allowed: `'1.5s'`). */
export type DurationString = `${number}${'ms' | 's' | 'm' | 'h'}`;

/** A duration option: a number of seconds, or a string with its unit. */
export type Duration = number | DurationString;

/** Milliseconds per unit. */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration accepted: 1e12 seconds (some 31 700 years), the TTLs' ceiling. A grace
 * or a lock's ttl goes to Redis as milliseconds (PX), which Redis refuses past its 64-bit clock:
 * every write, or every lock, would then fail at the server.
 */
const MAX_DURATION_MS = 1e15;

/** A decimal number (no sign, no exponent) and one unit, nothing around them. */
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)$/;

/**
 * A duration option in milliseconds: a number is taken in `numberUnit` (seconds for TTLs,
 * milliseconds for the options named in milliseconds), a string carries its own unit. Anything
 * else — another unit, a space, a sign, `NaN`, `Infinity` — is a RingConfigError naming
 * `field`; so is a duration that is not > 0 unless `allowZero`.
 */
export function durationMs(
  value: unknown,
  field: string,
  { numberUnit = 's', allowZero = false }: { numberUnit?: 's' | 'ms'; allowZero?: boolean } = {},
): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = numberUnit === 's' ? value * 1000 : value;
  } else if (typeof value === 'string') {
    const match = DURATION.exec(value);
    if (match === null) throw durationError(field, numberUnit, value);
    ms = Number(match[1]) * UNIT_MS[match[2]];
  } else {
    throw durationError(field, numberUnit, value);
  }
  if (!Number.isFinite(ms) || ms < 0 || (ms === 0 && !allowZero)) {
    throw durationError(field, numberUnit, value);
  }
  if (ms > MAX_DURATION_MS) {
    throw new RingConfigError(`${field}: at most 1e12 seconds, got ${shown(value)}`);
  }
  return ms;
}

/** A duration option in seconds (see durationMs). */
export function durationSeconds(value: unknown, field: string): number {
  return durationMs(value, field) / 1000;
}

/**
 * A TTL option (`expire`, `ttl`) in seconds, its range left to `validateTtl`: a number as it
 * is, a duration string parsed, anything else a RingConfigError naming `field`.
 */
export function ttlSeconds(value: unknown, field: string): unknown {
  return typeof value === 'number' ? value : durationSeconds(value, field);
}

function durationError(field: string, numberUnit: 's' | 'ms', value: unknown): RingConfigError {
  const unit = numberUnit === 's' ? 'seconds' : 'milliseconds';
  return new RingConfigError(
    `${field}: expected a duration > 0 — a number of ${unit} or a string such as '250ms', '30s', '5m', '1h' — got ${shown(value)}`,
  );
}
