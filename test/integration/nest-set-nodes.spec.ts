import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import request from 'supertest';
import { BehaviorSubject, type Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { RingRedisHealthIndicator } from '../../lib/health/index.js';
import {
  RingConfigError,
  RingRedisModule,
  RingRedisService,
  type RingNodesConfig,
} from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { until } from '../helpers/wait.js';

/**
 * A configuration reload in a Nest app: a provider watches where the node list lives (here a
 * BehaviorSubject standing for a config file or a service registry) and hands each new list
 * to RingRedisService.setNodes. The ring, its health endpoint and its log follow.
 */

const nest = useNestApps({ servers: 4, logged: true });

/** Where the app's node list comes from; `next()` is a reload. */
class NodesSource extends BehaviorSubject<RingNodesConfig> {}

/** What a user writes: every new list of nodes goes to the ring. */
@Injectable()
class RingReloader implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly failures: Error[] = [];
  private subscription?: Subscription;
  constructor(
    private readonly source: NodesSource,
    private readonly ring: RingRedisService,
  ) {}

  onApplicationBootstrap(): void {
    this.subscription = this.source.subscribe((nodes) => {
      this.ring.setNodes(nodes, 'cache').catch((error: Error) => this.failures.push(error));
    });
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }
}

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly ring: RingRedisHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.ring.isHealthy('ring-redis', { group: 'cache' })]);
  }
}

describe('RingRedisService.setNodes', () => {
  it('a reloaded node list changes the group: health and log follow, bad lists are refused', async () => {
    const source = new NodesSource(nest.nodes(0, 3));
    const app = await nest.boot({
      imports: [
        TerminusModule,
        RingRedisModule.forRoot({ groups: { cache: nest.nodes(0, 3) }, defaults: fast }),
      ],
      controllers: [HealthController],
      providers: [
        RingRedisHealthIndicator,
        RingReloader,
        { provide: NodesSource, useValue: source },
      ],
    });
    const ring = app.get(RingRedisService);
    const dict = ring.getOrThrow<string>('cache');
    await dict.set('k', 'v');

    // node2 goes, node3 comes.
    const { node2: _gone, ...kept } = nest.nodes(0, 4);
    source.next(kept);
    await until(() => dict.totalHash.nodes.join() === 'node0,node1,node3');
    expect(await dict.get('k')).toBe('v');
    const lines = nest.logs.ring('cache').map((l) => `${l.level} ${l.message}`);
    expect(lines).toContain('log group "cache": node "node2" removed from the ring');
    expect(lines).toContain('log group "cache": node "node3" added to the ring');
    const response = await request(app.getHttpServer()).get('/health');
    expect(response.status).toBe(200);
    const group = response.body.details['ring-redis'].groups.cache;
    expect(Object.keys(group.nodes)).toEqual(['node0', 'node1', 'node3']);
    expect(group.events.map((e: { type: string; node: string }) => `${e.type} ${e.node}`)).toEqual([
      'removed node2',
      'added node3',
    ]);

    // A bad list is refused and changes nothing; an unknown group too.
    source.next({});
    await until(() => app.get(RingReloader).failures.length === 1);
    expect(app.get(RingReloader).failures[0]).toBeInstanceOf(RingConfigError);
    expect(dict.totalHash.nodes).toEqual(['node0', 'node1', 'node3']);
    await expect(ring.setNodes(kept, 'nope')).rejects.toThrow(/no group "nope"/);
    // The default group is 'default'.
    await expect(ring.setNodes(kept)).rejects.toThrow(/no group "default"/);
  });
});
