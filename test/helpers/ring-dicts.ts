import { RingDict, type RingDictOptions, type RingEvent } from '../../lib/index.js';
import { ringNodes, serverOf } from './redis-fleet.js';
import type { RedisServer } from './redis-servers.js';
import { useRingFleet, type RingFleetFixture } from './ring-fleet.js';

/** What a suite gives every dict it makes: the options that do not depend on the value type. */
export type DictDefaults = Partial<
  Omit<RingDictOptions, 'codec' | 'onFail' | 'onNodeEjected' | 'onNodeRediscovered'>
>;

export interface RingDictFixture extends RingFleetFixture {
  /**
   * A RingDict with the suite's defaults, then `options`; closed after the test. Its nodes are
   * `options.nodes`, else the defaults', else the fleet's servers as `node0`, `node1`, ….
   */
  dict<V = unknown, F = never>(options?: Partial<RingDictOptions<V, F>>): RingDict<V, F>;
  /** The fleet's server behind ring node `node<i>`. */
  serverOf(node: string): RedisServer;
}

/**
 * A suite's dicts over its own servers: `servers` redis-servers as `useRingFleet` runs them
 * (0 for a suite that brings servers of its own and names them in `nodes`), and dicts made with
 * `defaults`, each closed after the test that made it.
 */
export function useRingDicts(
  defaults: DictDefaults = {},
  { servers = 3 }: { servers?: number } = {},
): RingDictFixture {
  const fleet = useRingFleet(servers);
  return {
    get fleet() {
      return fleet.fleet;
    },
    track: (item) => fleet.track(item),
    closeNow: (item) => fleet.closeNow(item),
    dict<V = unknown, F = never>(options: Partial<RingDictOptions<V, F>> = {}): RingDict<V, F> {
      const nodes = options.nodes ?? defaults.nodes ?? ringNodes(fleet.fleet.servers);
      return fleet.track(new RingDict<V, F>({ ...defaults, ...options, nodes }));
    },
    serverOf: (node) => serverOf(fleet.fleet.servers, node),
  };
}

/** Everything `dict` emits from now on. */
export function collect<V, F>(dict: RingDict<V, F>): RingEvent[] {
  const events: RingEvent[] = [];
  dict.events$.subscribe((event) => events.push(event));
  return events;
}

/** How many `type` events `events` holds (of `node`, when given). */
export function saw(events: readonly RingEvent[], type: RingEvent['type'], node?: string): number {
  return events.filter((e) => e.type === type && (node === undefined || e.node === node)).length;
}

/**
 * The first `count` keys `<tag><i>` owned by `owner` when every node is alive and, with
 * `owner` out, by `heir` (any heir when not given).
 */
export function keysOwnedBy<V, F>(
  dict: RingDict<V, F>,
  owner: string,
  count: number,
  options: { heir?: string; tag?: string } = {},
): string[] {
  const { heir, tag = 'k' } = options;
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    const entry = dict.getEntry(`${tag}${i}`);
    if (dict.totalHash.locate(entry) !== owner) continue;
    if (heir !== undefined && dict.totalHash.without(owner).locate(entry) !== heir) continue;
    keys.push(`${tag}${i}`);
  }
  return keys;
}
