import {
  Controller,
  Get,
  NotFoundException,
  Param,
  type INestApplication,
  type ModuleMetadata,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  InjectRingDict,
  RingDict,
  RingRedisModule,
  RingUnavailableFilter,
} from '../../lib/index.js';
import { CaptureLogger, fast, useNestApps } from '../helpers/nest-apps.js';

/**
 * RingUnavailableFilter over HTTP: with every node of the group down, a handler that reads the
 * dict answers 503 with a JSON body (not Nest's 500 and a logged stack); other errors keep
 * Nest's own answers. Registered globally, and as an APP_FILTER provider.
 */

const apps = useNestApps({ servers: 1 });

@Controller()
class ThingsController {
  constructor(@InjectRingDict() private readonly things: RingDict<string>) {}

  @Get('things/:key')
  async thing(@Param('key') key: string): Promise<{ value: string | null }> {
    return { value: (await this.things.get(key)) ?? null };
  }

  @Get('boom')
  boom(): never {
    throw new Error('boom');
  }

  @Get('nope')
  nope(): never {
    throw new NotFoundException('no such thing');
  }
}

/** An app over the fleet's one server, `register` adding the filter; logs captured. */
async function boot(
  register: 'global' | 'provider',
): Promise<{ app: INestApplication; logs: CaptureLogger }> {
  const metadata: ModuleMetadata = {
    imports: [RingRedisModule.forRoot({ groups: { default: apps.nodes() }, defaults: fast })],
    controllers: [ThingsController],
    providers:
      register === 'provider' ? [{ provide: APP_FILTER, useClass: RingUnavailableFilter }] : [],
  };
  const logs = new CaptureLogger();
  const ref = await Test.createTestingModule(metadata).setLogger(logs).compile();
  const app = apps.track(ref.createNestApplication());
  if (register === 'global') app.useGlobalFilters(new RingUnavailableFilter());
  await app.init();
  return { app, logs };
}

describe.each(['global', 'provider'] as const)('RingUnavailableFilter (%s)', (register) => {
  it('answers 503 with a JSON body when no node is alive, and logs no stack', async () => {
    const { app, logs } = await boot(register);
    const server = app.getHttpServer();
    await request(server).get('/things/a').expect(200, { value: null });
    await apps.fleet.servers[0].kill();
    const lines = logs.lines.length;
    const response = await request(server).get('/things/a').expect(503);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'The cache is unavailable: no Redis node is alive. Try again later.',
    });
    // No address of the server reaches the client.
    expect(JSON.stringify(response.body)).not.toContain(String(apps.fleet.servers[0].port));
    // Only the ring's own lines (ejected, "no node is alive"); Nest's ExceptionsHandler logs
    // nothing.
    expect(logs.lines.slice(lines).filter((line) => line.context === 'ExceptionsHandler')).toEqual(
      [],
    );
    await request(server).get('/things/b').expect(503);
  });

  it('leaves other errors to Nest: a thrown Error is 500, an HttpException its own status', async () => {
    const { app, logs } = await boot(register);
    const server = app.getHttpServer();
    await request(server)
      .get('/boom')
      .expect(500, { statusCode: 500, message: 'Internal server error' });
    expect(logs.lines.some((line) => line.context === 'ExceptionsHandler')).toBe(true);
    await request(server)
      .get('/nope')
      .expect(404, { statusCode: 404, message: 'no such thing', error: 'Not Found' });
  });
});

describe('without RingUnavailableFilter', () => {
  it('the same outage is a 500, which is why the filter exists', async () => {
    const logs = new CaptureLogger();
    const ref = await Test.createTestingModule({
      imports: [RingRedisModule.forRoot({ groups: { default: apps.nodes() }, defaults: fast })],
      controllers: [ThingsController],
    })
      .setLogger(logs)
      .compile();
    const app = apps.track(ref.createNestApplication());
    await app.init();
    await apps.fleet.servers[0].kill();
    await request(app.getHttpServer()).get('/things/a').expect(500);
  });
});
