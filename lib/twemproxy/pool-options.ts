import { TwemproxyConfigError } from './twemproxy-config-error.js';

/*
 * twemproxy 0.5's own reading of option values (nc_conf.c): every value is a single YAML
 * scalar, read as text; numbers are plain digits, booleans are exactly `true` / `false`.
 */

/** Reads one scalar value as twemproxy would; `where` prefixes messages. */
export function scalar(value: unknown, where: string): string {
  if (typeof value !== 'string') {
    const kind = Array.isArray(value) ? 'list' : value === null ? 'null' : 'mapping';
    throw new TwemproxyConfigError(`${where}: expected a single value, got a ${kind}`);
  }
  return value;
}

/** twemproxy's numbers: plain decimal digits, nothing else (no sign, no unit). */
function digits(value: unknown, where: string): number {
  const text = scalar(value, where);
  if (!/^[0-9]+$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw new TwemproxyConfigError(
      `${where}: expected a whole number, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function bool(value: unknown, where: string): boolean {
  const text = scalar(value, where);
  if (text !== 'true' && text !== 'false') {
    throw new TwemproxyConfigError(`${where}: expected true or false, got ${JSON.stringify(text)}`);
  }
  return text === 'true';
}

/**
 * The options of one pool, read as twemproxy reads them, with the warnings collected while
 * reading them. Every message names the pool and the option.
 */
export class PoolOptions {
  /** One line per option or behaviour that has no exact equivalent, in reading order. */
  readonly warnings: string[] = [];

  constructor(
    readonly pool: string,
    private readonly body: Record<string, unknown>,
  ) {}

  /** The option names the pool sets, in file order. */
  names(): string[] {
    return Object.keys(this.body);
  }

  has(option: string): boolean {
    return Object.hasOwn(this.body, option);
  }

  /** Where an option is, for messages: `pool "name", option`. */
  at(option: string): string {
    return `pool "${this.pool}", ${option}`;
  }

  /** The option's raw value (a string, list or mapping), unchecked. */
  raw(option: string): unknown {
    return this.body[option];
  }

  string(option: string): string {
    return scalar(this.body[option], this.at(option));
  }

  digits(option: string): number {
    return digits(this.body[option], this.at(option));
  }

  bool(option: string): boolean {
    return bool(this.body[option], this.at(option));
  }

  warn(option: string, message: string): void {
    this.warnings.push(`${option}: ${message}`);
  }
}
