import { RingConfigError, type RingDict } from '../../core/index.js';
import { checkOption, rejectUnknownOptions } from '../../core/config/option-checks.js';
import {
  BEHAVIOUR_OPTIONS,
  resolvePolicy,
  type CachePolicy,
  type RingCacheBehaviour,
} from './cache-policy.js';
import { isStringArray } from './method-runs.js';

/** Options of `RingCacheService.wrap`: those of `@RingCached` that make sense for one key. */
export interface RingWrapOptions extends RingCacheBehaviour {
  /** The ring group (default `'default'`). */
  group?: string;
  /** Tags of the cached value, for `invalidateTags`. */
  tags?: readonly string[];
}

/** A `wrap` call's options, checked and resolved. */
export interface WrapPlan {
  readonly dict: RingDict<unknown, unknown>;
  readonly policy: CachePolicy;
  readonly tags: readonly string[];
}

const KNOWN: ReadonlySet<string> = new Set([
  'group',
  'tags',
  ...BEHAVIOUR_OPTIONS,
] satisfies (keyof RingWrapOptions)[]);

const WHERE = 'wrap: ';
const NO_OPTIONS: RingWrapOptions = Object.freeze({});

/**
 * Checks `wrap`'s options and remembers the result per options object: callers usually pass
 * the same constant object, which is then checked once, not on every call.
 */
export class WrapPlans {
  private readonly plans = new WeakMap<RingWrapOptions, WrapPlan>();

  of(
    options: RingWrapOptions | undefined,
    dictOf: (group: string) => RingDict<unknown, unknown>,
  ): WrapPlan {
    const given = options ?? NO_OPTIONS;
    let plan = this.plans.get(given);
    if (plan === undefined) {
      plan = this.resolve(given, dictOf);
      this.plans.set(given, plan);
    }
    return plan;
  }

  private resolve(
    options: RingWrapOptions,
    dictOf: (group: string) => RingDict<unknown, unknown>,
  ): WrapPlan {
    if (options === null || typeof options !== 'object') {
      throw new RingConfigError(`${WHERE}options must be an object such as { ttl: '30s' }`);
    }
    rejectUnknownOptions(options, KNOWN, WHERE);
    const { group = 'default', tags = [] } = options;
    checkOption(typeof group === 'string', WHERE, 'group', 'a group name', group);
    checkOption(isStringArray(tags), WHERE, 'tags', 'an array of strings', tags);
    const dict = dictOf(group);
    return {
      dict,
      policy: resolvePolicy(options, WHERE, dict.expire),
      tags: [...new Set(tags)],
    };
  }
}
