import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { RingRedisModule, RingRedisService } from '../../lib/index.js';
import { fast, useNestApps } from '../helpers/nest-apps.js';
import { runNodeScript } from '../helpers/node-script.js';
import { redisCommand } from '../helpers/redis-command.js';
import { taggedNodes } from '../helpers/redis-fleet.js';
import type { RedisServer } from '../helpers/redis-servers.js';
import { until } from '../helpers/wait.js';

/**
 * An app that closes leaves no connection behind, and a process that runs one exits by itself:
 * after app.close(), and after a boot that failed.
 */

const nest = useNestApps({ logged: true });

describe('shutdown', () => {
  it('app.close() closes every connection (no enableShutdownHooks needed)', async () => {
    const tag = `nest-close-${process.pid}`;
    const ours = async (server: RedisServer) =>
      (await redisCommand(server.port, 'CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => line.includes(`name=${tag}`)).length;
    const counts = () => Promise.all(nest.fleet.servers.map(ours));

    expect(await counts()).toEqual([0, 0, 0]);
    const app = await nest.boot({
      imports: [
        RingRedisModule.forRoot({
          groups: {
            a: taggedNodes(nest.fleet.servers, tag),
            b: taggedNodes(nest.fleet.servers, tag),
          },
          defaults: fast,
        }),
      ],
    });
    const rings = app.get(RingRedisService);
    for (let i = 0; i < 30; i++) {
      await rings.getOrThrow('a').set(`k${i}`, i);
      await rings.getOrThrow('b').set(`k${i}`, i);
    }
    // Two groups: each has its own connection to each server.
    await until(async () => (await counts()).every((n) => n >= 2));
    await nest.closeNow(app);
    expect(await counts()).toEqual([0, 0, 0]);
  });

  it('a process running an HTTP app exits by itself after app.close()', async () => {
    const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
    // Plain ESM, so the child needs no compile step: decorators applied as functions.
    const script = `
      import 'reflect-metadata';
      import { Controller, Get, Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { RingRedisModule, RingRedisService } from ${JSON.stringify(lib)};
      class PingController {
        constructor(rings) { this.rings = rings; }
        async ping() { await this.rings.getOrThrow('test').set('child', 42); return this.rings.getOrThrow('test').get('child'); }
      }
      Reflect.defineMetadata('design:paramtypes', [RingRedisService], PingController);
      Get('ping')(PingController.prototype, 'ping', Object.getOwnPropertyDescriptor(PingController.prototype, 'ping'));
      Controller()(PingController);
      class AppModule {}
      Module({
        imports: [RingRedisModule.forRoot({ groups: { test: ${JSON.stringify(nest.nodes())} }, defaults: { heartbeatInterval: 100 } })],
        controllers: [PingController],
      })(AppModule);
      const app = await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, '127.0.0.1');
      const response = await fetch(await app.getUrl() + '/ping');
      console.log(await response.text());
      await app.close();
      console.log('closed', Date.now());
    `;
    const { code, stdout } = await runNodeScript(script, 10_000);
    const exitedAt = Date.now();
    expect(code).toBe(0);
    const [answer, closed, closedAt] = stdout.trim().split(/\s+/);
    expect([answer, closed]).toEqual(['42', 'closed']);
    // It exits promptly, not after some timer or socket timeout.
    expect(exitedAt - Number(closedAt)).toBeLessThan(2000);
  });

  // Nest never shuts down an app it failed to build: connections a group opened while it was
  // built would keep the process alive. Groups connect at bootstrap, after every module's
  // onModuleInit, so a boot that fails before leaves none open.
  it.each([
    [
      'another provider fails in its constructor',
      "constructor() { throw new Error('broken provider'); }",
      'broken provider',
    ],
    [
      'another provider fails in its onModuleInit',
      "onModuleInit() { throw new Error('broken provider'); }",
      'broken provider',
    ],
    [
      '@InjectRingDict names a group no module declares',
      "constructor(dict) {} }\n        InjectRingDict('sesions')(Broken, undefined, 0); {",
      'no group "sesions" is declared',
    ],
  ])(
    'a boot where %s leaves no connection: the process exits by itself',
    async (_where, body, message) => {
      const lib = new URL('../../.run/lib/index.js', import.meta.url).href;
      const script = `
        import 'reflect-metadata';
        import { Injectable, Module } from '@nestjs/common';
        import { NestFactory } from '@nestjs/core';
        import { InjectRingDict, RingRedisModule } from ${JSON.stringify(lib)};
        class Broken {
          ${body}
        }
        Injectable()(Broken);
        class AppModule {}
        Module({
          imports: [
            RingRedisModule.forRoot({
              groups: { test: ${JSON.stringify(nest.nodes())} },
            }),
          ],
          providers: [Broken],
        })(AppModule);
        try {
          await NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false });
        } catch (error) {
          console.log(error.message);
        }
      `;
      const { code, stdout } = await runNodeScript(script, 10_000);
      expect(stdout.trim()).toContain(message);
      expect(code).toBe(0);
    },
  );
});
