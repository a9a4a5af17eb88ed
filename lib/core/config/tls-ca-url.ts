import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import { RingConfigError } from '../errors.js';
import { nodeAddress } from './node-address.js';

/**
 * A `rediss://` URL may name the CA that signed its server's certificate, as a file:
 * `rediss://10.0.0.10:6380?ca=/etc/ssl/redis-ca.pem` — what a URL in an environment variable
 * needs for a server with a private CA, where ioredis' options would take an object. The URL
 * becomes the ioredis options it stands for, with `tls: { ca }` read from the file here, at
 * construction: a missing file is a configuration error, not a node that never connects.
 * Any other connection is answered as it is. `at` names the node in messages.
 */
export function caFromUrl(connection: RedisOptions | string, at: string): RedisOptions | string {
  if (typeof connection !== 'string' || !/^rediss:\/\/.*[?&]ca=/i.test(connection)) {
    return connection;
  }
  // The URL's own checks first, with their messages.
  nodeAddress(connection, at);
  const url = new URL(connection);
  const params = url.searchParams;
  const file = params.get('ca')!;
  let ca: Buffer;
  try {
    ca = readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new RingConfigError(
      `${at}.connection: cannot read the CA file "${file}" named by the URL's ca option (${reason})`,
    );
  }
  // The URL's own parts are percent-encoded (nodeAddress checked them); the query's values
  // come decoded already.
  const given = (value: string | null) => (value === null || value === '' ? undefined : value);
  const path = url.pathname.replace(/^\//, '');
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    tls: { ca },
  };
  const username = given(decodeURIComponent(url.username)) ?? given(params.get('username'));
  const password = given(decodeURIComponent(url.password)) ?? given(params.get('password'));
  const db = path !== '' ? path : params.get('db');
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (db !== null) options.db = Number(db);
  if (params.has('family')) options.family = Number(params.get('family'));
  if (params.has('connectionName')) options.connectionName = params.get('connectionName')!;
  return options;
}
