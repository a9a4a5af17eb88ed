/** The example from twemproxy's README, slightly extended. */
export const SAMPLE = `
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: "{}"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  timeout: 400
  server_retry_timeout: 2000
  server_failure_limit: 1
  servers:
   - 127.0.0.1:6380:1 server1
   - 127.0.0.1:6381:1 server2
   - 127.0.0.1:6382:2 server3

beta:
  listen: 127.0.0.1:22122
  redis: true
  servers:
   - 10.0.0.1:6379:29
   - 10.0.0.2:6379:30
   - cache.internal:11211:61
`;
