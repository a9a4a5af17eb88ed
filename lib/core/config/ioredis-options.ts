/**
 * The top-level options ioredis 6 reads (`RedisOptions`: its common, standalone and
 * Sentinel connection options, and the commander's). A node's connection may hold only
 * these: ioredis ignores any other field, so `{ hostname, port }` would quietly connect to
 * localhost instead of the host meant.
 */
export const IOREDIS_OPTION_NAMES: ReadonlySet<string> = new Set([
  // Where the server is (standalone).
  'host',
  'port',
  'path',
  'family',
  'tls',
  'disconnectTimeout',
  // Sentinel.
  'sentinels',
  'name',
  'role',
  'sentinelUsername',
  'sentinelPassword',
  'sentinelRetryStrategy',
  'sentinelReconnectStrategy',
  'preferredSlaves',
  'sentinelCommandTimeout',
  'enableTLSForSentinelMode',
  'sentinelTLS',
  'natMap',
  'updateSentinels',
  'sentinelMaxConnections',
  'failoverDetector',
  // Common to every connection.
  'Connector',
  'retryStrategy',
  'commandTimeout',
  'blockingTimeout',
  'blockingTimeoutGrace',
  'socketTimeout',
  'keepAlive',
  'noDelay',
  'connectionName',
  'disableClientInfo',
  'clientInfoTag',
  'username',
  'password',
  'db',
  'autoResubscribe',
  'autoResendUnfulfilledCommands',
  'reconnectOnError',
  'readOnly',
  'stringNumbers',
  'protocol',
  'replyMapping',
  'connectTimeout',
  'monitor',
  'maxRetriesPerRequest',
  'maxLoadingRetryTime',
  'enableAutoPipelining',
  'autoPipeliningIgnoredCommands',
  'offlineQueue',
  'commandQueue',
  'enableOfflineQueue',
  'enableReadyCheck',
  'lazyConnect',
  'scripts',
  'himportFieldsets',
  // The commander's.
  'keyPrefix',
  'showFriendlyErrorStack',
]);

/** What a misspelt or foreign option name most likely meant. */
export const IOREDIS_OPTION_HINTS: ReadonlyMap<string, string> = new Map([
  ['hostname', 'host'],
  ['server', 'host'],
  ['address', 'host'],
  ['user', 'username'],
  ['pass', 'password'],
  ['database', 'db'],
  ['socket', 'path'],
  ['socketPath', 'path'],
  ['ssl', 'tls'],
  ['sentinelName', 'name'],
  ['masterName', 'name'],
]);

/**
 * The options a `redis://` URL may carry in its query string. ioredis copies any query
 * parameter into its options as a string, where most of them (numbers, booleans, objects)
 * do not work; these few do.
 */
export const URL_QUERY_OPTIONS: ReadonlySet<string> = new Set([
  'db',
  'family',
  'username',
  'password',
  'connectionName',
]);
