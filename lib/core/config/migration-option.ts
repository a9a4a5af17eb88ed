import { RingConfigError } from '../errors.js';
import { shown } from './option-checks.js';
import {
  checkedNodes,
  type CheckedNodes,
  type NodeAddress,
  type ResolvedRingNodeConfig,
  type RingNodesConfig,
} from './ring-config.js';

/**
 * A rolling change of membership across processes (see docs/scaling.md): until `until`, the
 * dict shares its keys with processes still configured with `from`.
 */
export interface RingMigration {
  /** The nodes the processes not yet redeployed use. */
  from: RingNodesConfig;
  /** When the migration ends, in epoch milliseconds (`Date.now()`'s clock). */
  until: number;
}

/** The `migration` option, checked: `from` as `nodes` is, `until` a time. */
export interface ResolvedMigration {
  from: Record<string, ResolvedRingNodeConfig>;
  addresses: Map<string, NodeAddress>;
  until: number;
}

/** Checks the `migration` option; `where` names the group in messages. */
export function checkMigration(
  migration: unknown,
  name: string | undefined,
  where: string,
): ResolvedMigration | undefined {
  if (migration === undefined) return undefined;
  if (migration === null || typeof migration !== 'object' || Array.isArray(migration)) {
    throw new RingConfigError(
      `${where}migration: expected { from, until }, got ${shown(migration)}`,
    );
  }
  for (const key of Object.keys(migration)) {
    if (key !== 'from' && key !== 'until') {
      throw new RingConfigError(
        `${where}migration: unknown field "${key}" (expected from and until)`,
      );
    }
  }
  const { from, until } = migration as Partial<RingMigration>;
  if (typeof until !== 'number' || !Number.isFinite(until) || until < 0) {
    throw new RingConfigError(
      `${where}migration.until: expected a time in epoch milliseconds (Date.now()), got ${shown(until)}`,
    );
  }
  let checked: CheckedNodes;
  try {
    checked = checkedNodes(from as RingNodesConfig, name);
  } catch (error) {
    if (!(error instanceof RingConfigError)) throw error;
    throw new RingConfigError(`${where}migration.from: ${error.message}`, { cause: error });
  }
  return { from: checked.nodes, addresses: checked.addresses, until };
}
