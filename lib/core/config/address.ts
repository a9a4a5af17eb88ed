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
