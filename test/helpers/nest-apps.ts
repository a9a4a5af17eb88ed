import 'reflect-metadata';
import type { INestApplication, LoggerService, ModuleMetadata } from '@nestjs/common';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { beforeEach } from 'vitest';
import type { RingNodesConfig } from '../../lib/index.js';
import { ringNodes } from './redis-fleet.js';
import { useRingFleet, type RingFleetFixture } from './ring-fleet.js';

/** Every line the apps log, with its level and context. */
export class CaptureLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  log(message: unknown, ...params: unknown[]): void {
    this.push('log', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.push('warn', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.push('error', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.push('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.push('verbose', message, params);
  }
  /** Lines of context 'RingRedis' that mention group `group`. */
  ring(group: string): { level: string; message: string }[] {
    return this.lines.filter((l) => l.context === 'RingRedis' && l.message.includes(`"${group}"`));
  }
  private push(level: string, message: unknown, params: unknown[]): void {
    // Nest's Logger passes its context as the last parameter.
    const context = params.at(-1);
    this.lines.push({
      level,
      message: String(message),
      context: typeof context === 'string' ? context : undefined,
    });
  }
}

/**
 * Group defaults for quick tests: a killed node is ejected at once (its socket closes), a hung
 * one after commandTimeout; an ejected one is PINGed every heartbeat.
 */
export const fast = { heartbeatInterval: 100, commandTimeout: 300 };

export interface BootOptions {
  /** Give the app's log lines to the fixture's `logs` (else the app logs nothing). */
  logged?: boolean;
  /** Changes the testing module before it compiles, e.g. with `overrideProvider`. */
  configure?(builder: TestingModuleBuilder): TestingModuleBuilder;
}

export interface NestAppsFixture extends RingFleetFixture {
  /** What this test's apps booted with `logged` said. */
  readonly logs: CaptureLogger;
  /** The fleet's servers `from` to `to` (excluded) as ring nodes `node<from>`, …. */
  nodes(from?: number, to?: number): RingNodesConfig;
  /** Compiles `metadata` into an app and inits it; the app is closed after the test. */
  boot(metadata: ModuleMetadata, options?: BootOptions): Promise<INestApplication>;
}

/**
 * Nest apps over `servers` redis-servers that `useRingFleet` runs; see `NestAppsFixture`.
 * `logged` is the default of `boot`'s option of that name.
 */
export function useNestApps({
  servers = 3,
  logged: loggedByDefault = false,
}: { servers?: number; logged?: boolean } = {}): NestAppsFixture {
  const fleet = useRingFleet(servers);
  let logs = new CaptureLogger();
  beforeEach(() => {
    logs = new CaptureLogger();
  });
  return {
    get fleet() {
      return fleet.fleet;
    },
    track: (item) => fleet.track(item),
    closeNow: (item) => fleet.closeNow(item),
    get logs() {
      return logs;
    },
    nodes: (from = 0, to = servers) => ringNodes(fleet.fleet.servers.slice(from, to), from),
    async boot(metadata, { logged = loggedByDefault, configure }: BootOptions = {}) {
      const builder = Test.createTestingModule(metadata);
      const logging = logged ? builder.setLogger(logs) : builder;
      const ref = await (configure ? configure(logging) : logging).compile();
      const app = logged
        ? ref.createNestApplication()
        : ref.createNestApplication({ logger: false });
      fleet.track(app);
      await app.init();
      return app;
    },
  };
}

/**
 * The source of an ES module that boots, in a child process (`startNodeScript`), a Nest
 * application context importing `RingRedisModule.forRoot(forRoot)` from the compiled package
 * in `.run/`, then runs `body` with `app`, `cache` (RingCacheService) and `dict` (the default
 * group's RingDict) in scope. `forRoot` must survive JSON.
 */
export function nestAppScript(forRoot: object, body: string): string {
  const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
  return `
    import 'reflect-metadata';
    import { Module } from '@nestjs/common';
    import { NestFactory } from '@nestjs/core';
    import { RingCacheService, RingRedisModule, RingRedisService } from ${JSON.stringify(lib)};
    class ChildApp {}
    Module({ imports: [RingRedisModule.forRoot(${JSON.stringify(forRoot)})] })(ChildApp);
    const app = await NestFactory.createApplicationContext(ChildApp, { logger: false });
    const cache = app.get(RingCacheService);
    const dict = app.get(RingRedisService).getOrThrow('default');
    ${body}
  `;
}
