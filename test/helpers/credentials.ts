import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, expect, vi } from 'vitest';
import { aclUserArgs, startRedisServers, type RedisFleet } from './redis-fleet.js';
import { useRingDicts, type RingDictFixture } from './ring-dicts.js';

// Distinctive strings, so a search for them cannot match anything by chance.
export const PASSWORD = 'S3cret-pw-7f1c';
export const ACL_USER = 'ring-user-9d2';
export const ACL_PASSWORD = 'Acl-pw-41bb';
export const WRONG_PASSWORD = 'Wr0ng-pw-c0de';
const SECRETS = [PASSWORD, ACL_USER, ACL_PASSWORD, WRONG_PASSWORD];
/** A URL that still carries credentials (`redis://user:pw@host`). */
const URL_WITH_CREDENTIALS = /rediss?:\/\/[^\s/@]*@/i;

const COMMAND_TIMEOUT = 200;
export const HEARTBEAT = 100;

export interface CredentialServers {
  /** Dicts with short timeouts and heartbeats; their nodes are named in each dict's options. */
  fixture: RingDictFixture;
  /** Authenticated admin connections to set up and inspect the servers behind the dict's back. */
  admin: { pass: Redis; acl: Redis };
  /** Everything the package said in this test (console, process warnings), for the secret search. */
  captured: string[];
  /** The server that wants `requirepass` PASSWORD. */
  passPort(): number;
  /** The server whose only user is ACL_USER with ACL_PASSWORD (the default user is off). */
  aclPort(): number;
}

/**
 * Two password-protected servers for the suite, one with `requirepass` and one with an ACL
 * user, flushed after each test; everything the package prints is captured meanwhile.
 */
export function useCredentialServers(): CredentialServers {
  let requirepass: RedisFleet;
  let acl: RedisFleet;
  const admin = {} as Partial<CredentialServers['admin']> as CredentialServers['admin'];
  const captured: string[] = [];
  const passPort = (): number => requirepass.servers[0].port;
  const aclPort = (): number => acl.servers[0].port;

  beforeAll(async () => {
    requirepass = await startRedisServers(1, { extraArgs: ['--requirepass', PASSWORD] });
    acl = await startRedisServers(1, {
      extraArgs: [...aclUserArgs(ACL_USER, ACL_PASSWORD), '--user', 'default', 'off'],
    });
    admin.pass = new Redis({
      host: '127.0.0.1',
      port: passPort(),
      password: PASSWORD,
      lazyConnect: true,
    });
    admin.acl = new Redis({
      host: '127.0.0.1',
      port: aclPort(),
      username: ACL_USER,
      password: ACL_PASSWORD,
      lazyConnect: true,
    });
    await Promise.all([admin.pass.connect(), admin.acl.connect()]);
  });

  beforeEach(() => {
    captured.length = 0;
    const keep =
      (where: string) =>
      (...args: unknown[]): void => {
        captured.push(
          `${where}: ${args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 10 }))).join(' ')}`,
        );
      };
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      vi.spyOn(console, method).mockImplementation(keep(`console.${method}`));
    }
    vi.spyOn(process, 'emitWarning').mockImplementation(
      keep('emitWarning') as typeof process.emitWarning,
    );
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all([admin.pass?.flushall(), admin.acl?.flushall()]);
  });

  afterAll(async () => {
    await Promise.allSettled([admin.pass?.quit(), admin.acl?.quit()]);
    admin.pass?.disconnect();
    admin.acl?.disconnect();
    await Promise.all([requirepass?.stop(), acl?.stop()]);
  });

  // The servers are the suite's own (above), named in each dict's nodes. Registered after the
  // hooks above, so that its afterEach closes the dicts before theirs restores the mocks.
  const fixture = useRingDicts(
    { commandTimeout: COMMAND_TIMEOUT, heartbeatInterval: HEARTBEAT, retryRatio: 0 },
    { servers: 0 },
  );

  return { fixture, admin, captured, passPort, aclPort };
}

/** An error as fully as anyone could print it: message, stack, causes, own properties. */
export function describeError(error: unknown): string {
  return inspect(error, { depth: Infinity, showHidden: true });
}

/** Fails naming where a secret or a URL with credentials was found. */
export function expectNoSecrets(texts: readonly string[]): void {
  for (const text of texts) {
    for (const secret of SECRETS) {
      expect(text.includes(secret), `a secret leaked in: ${text.slice(0, 300)}`).toBe(false);
    }
    expect(text, 'a URL with credentials leaked').not.toMatch(URL_WITH_CREDENTIALS);
  }
}

export function keysFor(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `key${i}`);
}
