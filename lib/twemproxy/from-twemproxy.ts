import { callOptions } from '../core/config/call-options.js';
import { RingArgumentError } from '../core/errors.js';
import { describeKey } from '../core/keys/entry-keys.js';
import type { TwemproxyImport } from './import-result.js';
import { poolToGroup } from './pool-to-group.js';
import { TwemproxyConfigError } from './twemproxy-config-error.js';
import { readPools } from './yaml-pools.js';

/*
 * Turns a nutcracker (twemproxy) pool into the equivalent RingDict options, so that a
 * migrated application finds every key where nutcracker put it. The parsing follows
 * twemproxy 0.5's own reading of its config (nc_conf.c): every YAML scalar is a string,
 * numbers are plain digits, booleans are exactly `true` / `false`, and a server line is
 * split from its end, `host:port:weight [name]` or `/path/to/socket:weight [name]`.
 */

// What fromTwemproxy returns, importable from here with it.
export type {
  TwemproxyConnection,
  TwemproxyGroupConfig,
  TwemproxyImport,
} from './import-result.js';

export interface FromTwemproxyOptions {
  /** The pool to import; may be left out when the file defines a single pool. */
  pool?: string;
}

/**
 * Reads a nutcracker YAML config and returns the RingDict options that place keys exactly
 * as nutcracker's pool does, plus warnings for what does not carry over. Throws
 * `TwemproxyConfigError` on invalid YAML, an unknown or ambiguous pool, or an option value
 * nutcracker itself would refuse. The YAML it reads is any YAML: nutcracker's own reader is
 * stricter (no flow sequences, no `---`), so a file read here may still be one nutcracker
 * refuses — `nutcracker -t -c file` is the check for that.
 */
export function fromTwemproxy(
  yamlText: string,
  options: FromTwemproxyOptions = {},
): TwemproxyImport {
  // A string for the options (the pool's name, say) read as no options chose the only pool.
  const { pool: wanted } = callOptions('fromTwemproxy', options, ['pool'], "{ pool: 'alpha' }");
  if (wanted !== undefined && typeof wanted !== 'string') {
    throw new RingArgumentError(`fromTwemproxy: pool must be a string, got ${describeKey(wanted)}`);
  }
  const pools = readPools(yamlText);
  const pool = choosePool(Object.keys(pools), wanted);
  const body = pools[pool];
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new TwemproxyConfigError(`pool "${pool}": expected a mapping of options`);
  }
  return { pool, ...poolToGroup(pool, body as Record<string, unknown>) };
}

/** The pool asked for, or the only one; an unknown or ambiguous choice names the pools. */
function choosePool(names: string[], wanted: string | undefined): string {
  if (wanted === undefined) {
    if (names.length !== 1) {
      throw new TwemproxyConfigError(
        `the config defines ${names.length} pools (${names.join(', ')}): choose one with --pool NAME`,
      );
    }
    return names[0];
  }
  if (!names.includes(wanted)) {
    throw new TwemproxyConfigError(
      `unknown pool "${wanted}"; the config defines: ${names.join(', ')}`,
    );
  }
  return wanted;
}
