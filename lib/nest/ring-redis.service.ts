import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { map, merge, type Observable } from 'rxjs';
import { RingConfigError, RingDict, type RingNodesConfig } from '../core/index.js';
import { RingEventLog, type RingGroupEvent } from './ring-event-log.js';
import { RING_REDIS_MODULE_OPTIONS } from './ring-redis.module-definition.js';
import { RING_REDIS_DECLARED_GROUPS, RING_REDIS_LOGGER_CONTEXT } from './ring-redis.constants.js';
import type { RingRedisModuleOptions } from './ring-redis-module-options.interface.js';
import { rejectUnknownOptions } from '../core/config/option-checks.js';
import { quotedList } from './quoted-list.js';
import { checkGroupOptions } from './group-options.js';

export type { RingGroupEvent } from './ring-event-log.js';

/** The fields of RingRedisModuleOptions: a misspelt one fails the boot instead of being ignored. */
const MODULE_OPTIONS: ReadonlySet<string> = new Set(['groups', 'defaults', 'groupOptions']);

/** Recent events kept per group for health details. */
const RECENT_EVENTS = 20;

/**
 * Owns one RingDict per configured group: creates them at boot (so bad configuration fails
 * the boot), logs their ejections and rediscoveries, and closes them on shutdown.
 */
@Injectable()
export class RingRedisService implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Every group's events, each tagged with its group. */
  readonly events$: Observable<RingGroupEvent>;

  private readonly dicts = new Map<string, RingDict<unknown, unknown>>();
  /** The groups that connect at bootstrap (those not configured with `lazyConnect`). */
  private readonly eager: RingDict<unknown, unknown>[] = [];
  private readonly recent = new Map<string, RingGroupEvent[]>();
  private readonly logger = new Logger(RING_REDIS_LOGGER_CONTEXT);
  private readonly log = new RingEventLog(
    this.logger,
    (group, node) => this.dicts.get(group)?.aliveHash.nodes.includes(node) === true,
  );

  constructor(
    @Inject(RING_REDIS_MODULE_OPTIONS) options: RingRedisModuleOptions,
    @Inject(RING_REDIS_DECLARED_GROUPS) declared: string[],
  ) {
    const groups = options?.groups;
    if (groups === null || typeof groups !== 'object' || Array.isArray(groups)) {
      throw new RingConfigError(
        'RingRedisModule: options.groups must be an object of group name → nodes',
      );
    }
    rejectUnknownOptions(options, MODULE_OPTIONS, 'RingRedisModule: ');
    const resolved = Object.keys(groups);
    const missing = declared.filter((name) => !resolved.includes(name));
    if (missing.length > 0) {
      throw new RingConfigError(
        `RingRedisModule: group(s) ${quotedList(missing)} are declared in \`groups\` (${quotedList(declared)}) but missing from the resolved configuration (${quotedList(resolved)}); forRootAsync's \`groups\` is ["default"] when left out: list the groups you configure, or [] for none`,
      );
    }
    checkGroupOptions(options, resolved);
    try {
      for (const name of resolved) {
        const groupOptions = { ...options.defaults, ...options.groupOptions?.[name] };
        const lazy = groupOptions.lazyConnect;
        // Connections open at bootstrap (see onApplicationBootstrap), not while Nest builds.
        // Anything but a boolean is passed on for RingDict to reject.
        const dict = new RingDict<unknown, unknown>({
          ...groupOptions,
          nodes: groups[name],
          name,
          lazyConnect: lazy === undefined || lazy === false ? true : lazy,
        });
        if (lazy !== true) this.eager.push(dict);
        this.dicts.set(name, dict);
        this.recent.set(name, []);
      }
    } catch (error) {
      // Close what was created before the bad group, or its sockets keep the process alive.
      void this.close();
      throw error;
    }
    this.events$ = merge(
      ...[...this.dicts].map(([group, dict]) =>
        dict.events$.pipe(map((event): RingGroupEvent => ({ group, ...event }))),
      ),
    );
    this.events$.subscribe((event) => {
      const events = this.recent.get(event.group)!;
      events.push(event);
      if (events.length > RECENT_EVENTS) events.shift();
      this.log.record(event);
    });
  }

  /**
   * The RingDict of group `name`, or undefined. `V` (the values) and `F` (what the group's
   * `onFail` answers, if it has one) are the caller's word, as with `ModuleRef.get<T>()`:
   * the configuration is only known at run time.
   */
  get<V = unknown, F = never>(name: string): RingDict<V, F> | undefined {
    return this.dicts.get(name) as RingDict<V, F> | undefined;
  }

  /** The RingDict of group `name`; throws naming the configured groups when there is none. */
  getOrThrow<V = unknown, F = never>(name: string): RingDict<V, F> {
    const dict = this.get<V, F>(name);
    if (!dict) {
      throw new RingConfigError(
        `RingRedisService: no group "${name}"; configured groups: ${quotedList(this.names())}`,
      );
    }
    return dict;
  }

  /**
   * Changes the nodes of group `group` at run time (`RingDict.setNodes`), e.g. when the
   * configuration is reloaded: checked like the module's options (RingConfigError, nothing
   * changed); unchanged nodes keep their connection. See docs/scaling.md.
   */
  setNodes(nodes: RingNodesConfig, group = 'default'): Promise<void> {
    try {
      return this.getOrThrow(group).setNodes(nodes);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The configured group names. */
  names(): string[] {
    return [...this.dicts.keys()];
  }

  /** The most recent events of a group, oldest first (at most 20). */
  recentEvents(name: string): readonly RingGroupEvent[] {
    return this.recent.get(name) ?? [];
  }

  /**
   * Opens the groups' connections once every module is built and initialised: Nest never
   * shuts down an app whose boot failed, so connections opened earlier — while a provider
   * further on throws, or an `@InjectRingDict` names no group — would keep the process alive.
   * A request made before this (in an `onModuleInit`) connects its node itself.
   */
  onApplicationBootstrap(): void {
    for (const dict of this.eager) void dict.connect().then(() => this.logConnected(dict));
  }

  /** One line per group once its boot connections are settled: how many nodes it has. */
  private logConnected(dict: RingDict<unknown, unknown>): void {
    const states = dict.nodeStates();
    const down = states.filter((state) => !state.alive).map((state) => state.name);
    const line = `group "${dict.name}": connected to ${states.length - down.length} of ${states.length} nodes`;
    if (down.length === 0) this.logger.log(line);
    else this.logger.warn(`${line}; down: ${quotedList(down)}`);
  }

  /**
   * Closes every dict. `app.close()` calls this hook whether or not `enableShutdownHooks()`
   * was called (that only adds the signal handlers), and calls it last — after every
   * `onModuleDestroy` and `beforeApplicationShutdown` — so providers can still use their
   * dicts while they shut down.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Closes every group's connections: on shutdown, or when the boot fails after they opened. */
  async close(): Promise<void> {
    await Promise.all([...this.dicts.values()].map((dict) => dict.close()));
  }
}
