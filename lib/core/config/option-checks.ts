import { RingConfigError } from '../errors.js';

/**
 * A value as a configuration error shows it: JSON where that says what it is, else its own
 * name (`NaN` and `Infinity`, which JSON would print as `null`; `undefined`; a function).
 */
export function shown(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    // Circular, or holding a BigInt.
    return String(value);
  }
}

/** Throws a RingConfigError naming `where` and the first field of `options` not in `known`. */
export function rejectUnknownOptions(
  options: object,
  known: ReadonlySet<string>,
  where: string,
): void {
  for (const field of Object.keys(options)) {
    if (!known.has(field)) {
      throw new RingConfigError(
        `${where}unknown option "${field}"; known options: ${[...known].join(', ')}`,
      );
    }
  }
}

/**
 * An option's value, or `fallback` when it was left out. Only `undefined` means "left out":
 * a `null` is checked like any other value and refused, as `prefix: null` is (`??` would turn
 * `heartbeatInterval: null`, meant as "off", into the 1000 ms default without a word).
 */
export function given<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/** Throws a RingConfigError naming `where` and `field` unless `ok`. */
export function checkOption(
  ok: boolean,
  where: string,
  field: string,
  expected: string,
  got: unknown,
): void {
  if (!ok) {
    throw new RingConfigError(`${where}${field}: expected ${expected}, got ${shown(got)}`);
  }
}

/**
 * Throws unless the capacities' sum is finite: each may be, their sum not (two of 1e308),
 * and a share of Infinity is 0 or NaN, so one node would take every key.
 */
export function checkCapacityTotal(total: number, where: string): void {
  if (!Number.isFinite(total)) {
    throw new RingConfigError(
      `${where}: capacity: the nodes' capacities add up to ${total}, more than a number can hold; use smaller ones (only their ratios matter)`,
    );
  }
}

/** The longest setTimeout Node keeps (about 24.8 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks a duration option given in whole milliseconds a timer can hold (0 allowed where
 * `zero` says so); answers it.
 */
export function checkMilliseconds(
  value: number,
  where: string,
  field: string,
  zero: boolean,
): number {
  checkOption(
    Number.isInteger(value) && (zero ? value >= 0 : value > 0) && value <= MAX_TIMER_MS,
    where,
    field,
    `an integer number of milliseconds ${zero ? '≥' : '>'} 0`,
    value,
  );
  return value;
}
