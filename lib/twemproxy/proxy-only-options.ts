import type { PoolOptions } from './pool-options.js';

/*
 * The pool options that describe the proxy itself or its way of handling failures, with no
 * exact equivalent in a client-side ring. Each is still checked as nutcracker would check it
 * (a file nutcracker refuses is refused here too), then reported with one warning.
 */

/** Every option nutcracker 0.5 knows; anything else gets an "unknown option" warning. */
const TWEMPROXY_OPTIONS = new Set([
  'listen',
  'hash',
  'hash_tag',
  'distribution',
  'timeout',
  'backlog',
  'client_connections',
  'redis',
  'tcpkeepalive',
  'reuseport',
  'redis_auth',
  'redis_db',
  'preconnect',
  'auto_eject_hosts',
  'server_connections',
  'server_retry_timeout',
  'server_failure_limit',
  'servers',
]);

/** Checks the proxy-only options and warns once for each, then once per unknown option. */
export function warnProxyOnlyOptions(options: PoolOptions): void {
  warnProxySocket(options);
  warnFailureHandling(options);
  for (const option of options.names()) {
    if (!TWEMPROXY_OPTIONS.has(option)) options.warn(option, 'unknown twemproxy option, ignored');
  }
}

/** The listening socket and the connections behind it: the application connects directly. */
function warnProxySocket(options: PoolOptions): void {
  if (options.has('listen')) {
    options.warn(
      'listen',
      `${options.string('listen')} — no proxy listens any more: the application connects to the servers directly`,
    );
  }
  for (const option of ['backlog', 'client_connections']) {
    if (options.has(option)) {
      options.digits(option);
      options.warn(option, "applies to the proxy's listening socket; no equivalent");
    }
  }
  if (options.has('server_connections')) {
    const n = options.digits('server_connections');
    options.warn(
      'server_connections',
      n !== 1
        ? `${n} ignored: each RingDict keeps one pipelined connection per node`
        : 'no equivalent: each RingDict keeps one connection per node',
    );
  }
  if (options.has('preconnect')) {
    options.bool('preconnect');
    options.warn('preconnect', 'no equivalent: RingDict connects to every node when it is created');
  }
  for (const option of ['tcpkeepalive', 'reuseport']) {
    if (options.has(option)) {
      options.bool(option);
      options.warn(
        option,
        "no equivalent option (set keepAlive in a node's ioredis connection options if needed)",
      );
    }
  }
}

/** nutcracker's ejection settings: RingDict ejects and rediscovers nodes its own way. */
function warnFailureHandling(options: PoolOptions): void {
  const autoEject = options.has('auto_eject_hosts') ? options.bool('auto_eject_hosts') : false;
  options.warn(
    'auto_eject_hosts',
    autoEject
      ? 'RingDict also ejects dead nodes and rebuilds the ketama ring as twemproxy does, but on the first connection failure, and it probes them back with a heartbeat'
      : 'off in nutcracker (requests to a dead server fail); RingDict always ejects a dead node, so its keys go to the next node until it answers again',
  );
  if (options.has('server_retry_timeout')) {
    const ms = options.digits('server_retry_timeout');
    options.warn(
      'server_retry_timeout',
      `${ms} ms ignored: an ejected node is PINGed every heartbeatInterval (default 1000 ms) and rejoins when it answers`,
    );
  }
  if (options.has('server_failure_limit')) {
    const n = options.digits('server_failure_limit');
    options.warn(
      'server_failure_limit',
      `${n} ignored: RingDict ejects a node on its first connection failure`,
    );
  }
}
