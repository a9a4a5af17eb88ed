import { RingArgumentError, RingError } from '../errors.js';
import { describeKey } from '../keys/entry-keys.js';
import type { WellFormedString } from '../keys/wire.js';
import { validateTtl } from './ring-dict-options.js';

export interface RingSetOptions {
  /** Time to live in SECONDS (fractions allowed); overrides the dict's `expire`. */
  ttl?: number;
}

export interface RingClearOptions {
  /** Needed to clear a dict whose prefix is empty, i.e. every key of every node. */
  force?: boolean;
}

/** `options.ttl` of a call of `method`, checked, else `expire` (the dict's default). */
export function ttlOption(
  method: string,
  options: RingSetOptions | undefined,
  expire: number | undefined,
): number | undefined {
  // `set(key, value, 60)` would otherwise store the value with no TTL at all.
  const { ttl } = callOptions(method, options, ['ttl'], '{ ttl: 60 }');
  return ttl === undefined ? expire : validateTtl(ttl, `${method}: ttl`);
}

/** `options.force` of `clear`, checked. */
export function forceOption(options: RingClearOptions | undefined): boolean {
  const { force = false } = callOptions('clear', options, ['force'], '{ force: true }');
  if (typeof force !== 'boolean') {
    throw new RingArgumentError(`clear: force must be true or false, got ${describeKey(force)}`);
  }
  return force;
}

/**
 * An object that can hold options: a plain one, or one with fields of its own (an instance of
 * the caller's class). A Date, a Map or a Promise (a ttl not awaited) has neither, and would be
 * taken for no options at all.
 */
function optionsLike(options: object): boolean {
  const proto: unknown = Object.getPrototypeOf(options);
  if (proto === Object.prototype || proto === null) return true;
  return !Array.isArray(options) && Object.keys(options).length > 0;
}

/**
 * The options argument of a call of `method`: undefined (or null) as none, else an object
 * with no field but `known`; anything else is a RingArgumentError naming what was given
 * (`example` shows a good one). A misspelt option would otherwise be ignored.
 */
export function callOptions<T extends object>(
  method: string,
  options: T | undefined,
  known: readonly (keyof T & string)[],
  example: string,
): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || !optionsLike(options)) {
    throw new RingArgumentError(
      `${method}: options must be an object such as ${example}, got ${describeKey(options)}`,
    );
  }
  for (const field in options) {
    if (!(known as readonly string[]).includes(field)) {
      throw new RingArgumentError(
        `${method}: unknown option "${field}"; the option${known.length > 1 ? 's are' : ' is'} ${known.join(', ')}`,
      );
    }
  }
  return options;
}

/** `clearPrefix`'s argument, checked against the dict's own `prefix`. */
export function clearPrefixOf(keyPrefix: unknown, prefix: string): string {
  if (typeof keyPrefix !== 'string') {
    throw new RingArgumentError(
      `clearPrefix: the prefix must be a string, got ${describeKey(keyPrefix)}`,
    );
  }
  // Sent as U+FFFD, a lone surrogate would have the SCAN delete the keys that begin with that
  // character instead.
  if (!(keyPrefix as WellFormedString).isWellFormed()) {
    throw new RingArgumentError(
      `clearPrefix: the prefix ${describeKey(keyPrefix)} holds a lone surrogate, which no key begins with`,
    );
  }
  if (keyPrefix === '' && prefix === '') {
    throw new RingError(
      'clearPrefix() needs a non-empty prefix; use clear({ force: true }) to delete everything',
    );
  }
  return keyPrefix;
}

/**
 * Commands `visitRedis` refuses. One that blocks (BLPOP 0) holds the node's shared connection
 * past `commandTimeout`: the node is taken for hung, ejected, and the command sent to the next
 * node, which blocks in turn — every node was ejected, one after another. One that changes the
 * connection's mode (SUBSCRIBE, MONITOR) would leave it unusable for the ring's requests.
 */
const REFUSED_COMMANDS: ReadonlySet<string> = new Set([
  'BLPOP',
  'BRPOP',
  'BRPOPLPUSH',
  'BLMOVE',
  'BLMPOP',
  'BZPOPMIN',
  'BZPOPMAX',
  'BZMPOP',
  'WAIT',
  'WAITAOF',
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'SSUBSCRIBE',
  'MONITOR',
  'RESET',
  'QUIT',
  'CLIENT',
  'SELECT',
]);

/**
 * Checks `visitRedis`' command: a non-empty string, not one of REFUSED_COMMANDS. XREAD's keys follow STREAMS, so it is
 * never sent with the key first; SELECT, CLIENT, QUIT and RESET would change or end the shared
 * connection when the key spells an argument they take.
 */
export function checkCommand(command: unknown): asserts command is string {
  if (typeof command !== 'string' || command === '') {
    throw new RingArgumentError(
      `visitRedis: the command must be a non-empty string, got ${describeKey(command)}`,
    );
  }
  if (REFUSED_COMMANDS.has(command.toUpperCase())) {
    throw new RingArgumentError(
      `visitRedis: ${command} is refused: it blocks the node's shared connection or changes it, which the ring would take for a hung node or lose; use a client of your own`,
    );
  }
}

/**
 * Checks `visitRedis`' argument `i`: a string Redis can hold as it is (a lone surrogate would
 * be sent as U+FFFD), a finite number (NaN would be sent as "NaN") or a Buffer.
 */
export function commandArgument(command: string, arg: unknown, i: number): void {
  const ok =
    typeof arg === 'string'
      ? (arg as WellFormedString).isWellFormed()
      : typeof arg === 'number'
        ? Number.isFinite(arg)
        : Buffer.isBuffer(arg);
  if (!ok) {
    throw new RingArgumentError(
      `visitRedis ${command}: argument ${i + 1} must be a well-formed string, a finite number or a Buffer, got ${describeKey(arg)}`,
    );
  }
}
