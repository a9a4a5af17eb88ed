import { describe, it, expect, afterAll } from 'vitest';
import { RedisReplyError, redisCommand } from '../helpers/redis-command.js';
import { startRedisServers, type RedisFleet } from '../helpers/redis-fleet.js';
import { RedisServerNotFoundError, stopAllRedisServers } from '../helpers/redis-servers.js';

/** Resolves with the reply, or with 'no answer' if none came within `ms`. */
async function replyWithin(pending: Promise<string>, ms: number): Promise<string | 'no answer'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'no answer'>((resolve) => {
    timer = setTimeout(() => resolve('no answer'), ms);
  });
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

const fleets: RedisFleet[] = [];

afterAll(async () => {
  await Promise.all(fleets.map((fleet) => fleet.stop()));
  await stopAllRedisServers();
});

describe('startRedisServers', () => {
  it('starts servers on distinct free ports that answer PING', async () => {
    const fleet = await startRedisServers(2);
    fleets.push(fleet);
    const [a, b] = fleet.servers;
    expect(a.port).not.toBe(b.port);
    for (const server of fleet.servers) {
      expect(server.port).not.toBe(6379);
      expect(server.host).toBe('127.0.0.1');
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.running).toBe(true);
      expect(server.isHung).toBe(false);
      expect(await redisCommand(server.port, 'PING')).toBe('PONG');
    }
    expect(a.name).toBe('redis0');
  });

  it('redisCommand decodes simple, integer, bulk and nil replies', async () => {
    const fleet = await startRedisServers(1);
    fleets.push(fleet);
    const { port } = fleet.servers[0];
    expect(await redisCommand(port, 'SET', 'k', 'välue\r\nwith crlf')).toBe('OK');
    expect(await redisCommand(port, 'GET', 'k')).toBe('välue\r\nwith crlf');
    expect(await redisCommand(port, 'DBSIZE')).toBe('1');
    expect(await redisCommand(port, 'GET', 'missing')).toBe('(nil)');
    await expect(redisCommand(port, 'NOSUCHCOMMAND')).rejects.toBeInstanceOf(RedisReplyError);
  });

  it('kill() refuses connections; restart() brings the same port back', async () => {
    const fleet = await startRedisServers(1);
    fleets.push(fleet);
    const server = fleet.servers[0];
    const { port, pid: firstPid } = server;
    await server.kill();
    expect(server.running).toBe(false);
    expect(isAlive(firstPid)).toBe(false);
    await expect(redisCommand(port, 'PING')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await server.restart();
    expect(server.running).toBe(true);
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(firstPid);
    expect(await redisCommand(port, 'PING')).toBe('PONG');
  });

  it('hang() leaves PING unanswered; resume() answers it', async () => {
    const fleet = await startRedisServers(1);
    fleets.push(fleet);
    const server = fleet.servers[0];
    server.hang();
    expect(server.isHung).toBe(true);
    expect(server.running).toBe(true);
    const pending = redisCommand(server.port, 'PING');
    expect(await replyWithin(pending, 300)).toBe('no answer');

    server.resume();
    expect(server.isHung).toBe(false);
    // The PING queued while frozen is answered as soon as the process runs again.
    expect(await pending).toBe('PONG');
    expect(await redisCommand(server.port, 'PING')).toBe('PONG');
  });

  it('stop() ends the processes, even a hung one', async () => {
    const fleet = await startRedisServers(2);
    const pids = fleet.servers.map((server) => server.pid);
    fleet.servers[1].hang();
    await fleet.stop();
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    for (const server of fleet.servers) expect(server.running).toBe(false);
    // Stopping twice is harmless.
    await fleet.stop();
  });

  it('passes extraArgs through: --requirepass makes PING fail with NOAUTH', async () => {
    const fleet = await startRedisServers(1, { extraArgs: ['--requirepass', 'secret'] });
    fleets.push(fleet);
    const { port } = fleet.servers[0];
    await expect(redisCommand(port, 'PING')).rejects.toThrow(/NOAUTH/);
    expect(await redisCommand(port, 'AUTH', 'secret')).toBe('OK');
  });

  it('reports a missing redis-server binary clearly', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent-for-this-test';
    let failure: unknown;
    try {
      await startRedisServers(1);
    } catch (error) {
      failure = error;
    } finally {
      process.env.PATH = path;
    }
    expect(failure).toBeInstanceOf(RedisServerNotFoundError);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).toMatchObject({ code: 'REDIS_SERVER_NOT_FOUND' });
    expect((failure as Error).message).toMatch(/redis-server was not found on PATH/);
  });
});
