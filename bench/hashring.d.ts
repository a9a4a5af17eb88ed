/** The `hashring` npm package (3.2.0) ships no types: just what the benchmarks use. */
declare module 'hashring' {
  class HashRing {
    constructor(
      servers: Record<string, number> | string[],
      algorithm?: string,
      options?: Record<string, unknown>,
    );
    /** The server owning `key` (results are memoised in a 5000-entry LRU). */
    get(key: string): string | undefined;
  }
  export = HashRing;
}
