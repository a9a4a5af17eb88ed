import { parseDocument } from 'yaml';
import { TwemproxyConfigError } from './twemproxy-config-error.js';

/**
 * The pools of a nutcracker YAML config: pool name → its options, every scalar a string.
 * Throws `TwemproxyConfigError` on invalid YAML or a document that is not a mapping of pools.
 */
export function readPools(yamlText: string): Record<string, unknown> {
  if (typeof yamlText !== 'string') throw new TwemproxyConfigError('expected the YAML text');
  // The failsafe schema reads every scalar as a string, as twemproxy does: `timeout: 400`,
  // `redis: true` and `hash_tag: "{}"` all arrive as text and are checked where they are read.
  const doc = parseDocument(yamlText, { schema: 'failsafe', uniqueKeys: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0].message.split('\n')[0];
    throw new TwemproxyConfigError(`invalid YAML: ${first}`);
  }
  let root: unknown;
  try {
    // An alias to no anchor, or aliases that multiply past the library's limit, fail here.
    root = doc.toJS();
  } catch (error) {
    throw new TwemproxyConfigError(`invalid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (root === null || root === undefined || root === '') {
    throw new TwemproxyConfigError('the config defines no pool');
  }
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw new TwemproxyConfigError('expected a mapping of pool name → pool options at the top');
  }
  if (Object.keys(root).length === 0) throw new TwemproxyConfigError('the config defines no pool');
  return root as Record<string, unknown>;
}
