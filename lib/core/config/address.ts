import { isIPv6 } from 'node:net';

/** `host:port`, an IPv6 host in brackets: how the ring names a server in messages and health. */
export function joinAddress(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The parts of a `host:port` or `[ipv6]:port` address. */
export function splitAddress(address: string): { host: string; port: string } {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  return {
    host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host,
    port: address.slice(colon + 1),
  };
}

/** Names of this machine's loopback interface, as canonicalHost() leaves them. */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '::ffff:7f00:1']);

/**
 * A host as the duplicate-address check compares it: lower case, without brackets or a
 * final dot, an IPv6 address in its shortest form, and every name of the loopback
 * interface (`localhost`, `127.0.0.1`, `::1`) as `localhost`: a server bound to both
 * loopback addresses (Redis' default) answers on each, so they name one server. Names are
 * not resolved (construction is synchronous): two names of one remote server still differ.
 */
export function canonicalHost(host: string): string {
  let canonical = host.toLowerCase();
  if (canonical.startsWith('[') && canonical.endsWith(']')) canonical = canonical.slice(1, -1);
  if (canonical.endsWith('.')) canonical = canonical.slice(0, -1);
  // The URL parser writes an IPv6 address in its shortest form: `0:0:0:0:0:0:0:1` is `::1`
  // (it refuses a zone such as `%eth0`: such an address is left as written).
  if (isIPv6(canonical) && !canonical.includes('%')) {
    canonical = new URL(`redis://[${canonical}]`).hostname.slice(1, -1);
  }
  return LOOPBACK.has(canonical) ? 'localhost' : canonical;
}

/** `host:port` with canonicalHost() and the port as a number: one server, one string. */
export function serverKey(host: string, port: number | string): string {
  return joinAddress(canonicalHost(host), Number(port));
}
