import { RingConfigError } from '../errors.js';
import { shown } from './option-checks.js';
import {
  DEFAULT_CAPACITY,
  resolveNodes,
  validateNodes,
  type RingNodesConfig,
} from './ring-config.js';

const WHERE = 'parseRingNodes';

/**
 * A group's nodes from one string, as an environment variable or `ConfigService` holds them:
 *
 * - `name=url` pairs separated by commas, with an optional capacity after the name:
 *   `n0=redis://10.0.0.10:6379,big:2=redis://10.0.0.12:6379` (capacity 1 when left out). The
 *   capacity is what follows the LAST colon of the name, so a name with a colon of its own
 *   (`10.0.0.10:6379`, a ketama identity) needs one written out: `10.0.0.10:6379:1=redis://…`.
 *   A comma in a password must be percent-encoded (`%2C`), as anywhere in a URL.
 * - or JSON: `{ "n0": "redis://…", "big": { "capacity": 2, "connection": "redis://…" } }`.
 *
 * Answers `{ name: { capacity, connection } }`, checked like a group's nodes: anything wrong
 * throws a `RingConfigError` naming the node and what is wrong with it.
 */
export function parseRingNodes(spec: string): RingNodesConfig {
  if (typeof spec !== 'string') {
    throw new RingConfigError(`${WHERE}: expected a string, got ${shown(spec)}`);
  }
  const text = spec.trim();
  if (text === '') {
    throw new RingConfigError(
      `${WHERE}: the string is empty; expected name=redis://host:port pairs separated by commas, or JSON`,
    );
  }
  const nodes = text.startsWith('{') ? fromJson(text) : fromPairs(text);
  try {
    validateNodes(nodes);
  } catch (error) {
    if (!(error instanceof RingConfigError)) throw error;
    throw new RingConfigError(`${WHERE}: ${error.message}`, { cause: error });
  }
  return resolveNodes(nodes);
}

function fromJson(text: string): RingNodesConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RingConfigError(`${WHERE}: not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new RingConfigError(
      `${WHERE}: the JSON must be an object of node name → URL or { capacity, connection }`,
    );
  }
  const twice = repeatedTopLevelKey(text);
  if (twice !== undefined) {
    throw new RingConfigError(`${WHERE}: node "${twice}" is named twice`);
  }
  return parsed as RingNodesConfig;
}

/**
 * The first name the outer object of `text` (valid JSON, an object) gives twice, if any:
 * JSON.parse keeps the last silently, which would drop a node without a word.
 */
function repeatedTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}

/** The index of the quote that closes the JSON string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

function fromPairs(text: string): RingNodesConfig {
  const nodes: RingNodesConfig = {};
  const parts = text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      throw new RingConfigError(
        `${WHERE}: "${part}" is not name=redis://host:port (no "=")${part.includes('://') ? '; give each node a name: n0=redis://…' : ''}`,
      );
    }
    const [name, capacity] = nameAndCapacity(part.slice(0, eq).trim(), part);
    if (Object.hasOwn(nodes, name)) {
      throw new RingConfigError(`${WHERE}: node "${name}" is named twice`);
    }
    const connection = part.slice(eq + 1).trim();
    if (connection === '') {
      throw new RingConfigError(`${WHERE}: node "${name}" has no URL after "="`);
    }
    nodes[name] = { capacity, connection };
  }
  if (parts.length === 0) throw new RingConfigError(`${WHERE}: "${text}" names no node`);
  return nodes;
}

/** `name` or `name:capacity` (the last colon), checked. */
function nameAndCapacity(head: string, part: string): [string, number] {
  const colon = head.lastIndexOf(':');
  const name = colon < 0 ? head : head.slice(0, colon);
  if (name === '') throw new RingConfigError(`${WHERE}: "${part}" has no node name before "="`);
  // An assignment to this name would set the object's prototype, not add a node.
  if (name === '__proto__') throw new RingConfigError(`${WHERE}: "__proto__" cannot name a node`);
  if (colon < 0) return [name, DEFAULT_CAPACITY];
  const written = head.slice(colon + 1);
  const capacity = /^\d+(\.\d+)?(e\d+)?$/i.test(written) ? Number(written) : NaN;
  if (!(capacity > 0) || !Number.isFinite(capacity)) {
    throw new RingConfigError(
      `${WHERE}: node "${name}": the capacity after ":" must be a number > 0, got "${written}"`,
    );
  }
  return [name, capacity];
}
