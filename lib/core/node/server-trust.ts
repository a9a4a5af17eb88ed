import type { Redis } from 'ioredis';
import { isConnectionError, RingConnectionError } from './connection-errors.js';
import { DEFAULT_MAX_BULK_BYTES } from '../payload-limit.js';
import { handshake, type PastConnection, type ServerIdentity } from './handshake.js';

/**
 * What the ring knows of the server behind a node across its connections, and whether its
 * data can be trusted.
 *
 * A server that restarted and loaded an RDB/AOF snapshot, or a replica promoted by Sentinel
 * that missed the last writes, holds values older than ones already acknowledged. Every
 * process would serve them. So the data is vouched for: a key on the server (`instanceKey`)
 * holds the `run_id` of the server process that was brought up to date. A server whose
 * run_id is another one has restarted or failed over since: its data is not trusted until
 * the dict has cleared it and vouched for it again. The key lives on the server itself, so
 * every process, even one started after the restart, sees the same verdict; it is replicated
 * and persisted with the data it vouches for, and a new server process never matches it.
 */
export class ServerTrust {
  /** The server process seen at the last handshake. */
  private runId?: string;
  /** The connection open now, as the server knows it. */
  private current?: PastConnection;
  /** Connections given up on: killed at the next handshake. */
  private earlier: PastConnection[] = [];
  /** Why the server's data cannot be served now; undefined when it can. */
  private distrusted?: string;
  /** The longest value the server accepts, as its last handshake told (none before). */
  private maxBulk: number | undefined;

  constructor(
    /** The key vouching for the data (one per dict prefix). */
    private readonly instanceKey: string,
    /** The database the node is configured on. */
    private readonly db: number,
  ) {}

  /** The server process seen at the last handshake, if INFO was allowed. */
  get serverRunId(): string | undefined {
    return this.runId;
  }

  /**
   * The longest value the server accepts (`proto-max-bulk-len`; Redis' default if it would not
   * say), undefined before the first handshake.
   */
  get maxBulkBytes(): number | undefined {
    return this.maxBulk;
  }

  /** Why the server's data must not be served until it is cleared, if it must not. */
  get distrust(): string | undefined {
    return this.distrusted;
  }

  /** The connection is gone or given up on: it is killed on the server at the next handshake. */
  lost(): void {
    if (this.current === undefined) return;
    this.earlier.push(this.current);
    this.current = undefined;
  }

  /**
   * The handshake of a fresh connection (see `handshake`): kills the earlier connections and
   * judges the server. Rejects with a connection-class error when the connection cannot be
   * used (it is on another database than configured).
   */
  async greet(client: Redis): Promise<void> {
    const identity = await handshake(client, this.earlier, this.instanceKey);
    this.earlier = [];
    this.current = identity.connection;
    this.maxBulk = identity.maxBulkBytes ?? DEFAULT_MAX_BULK_BYTES;
    if (identity.db !== undefined && identity.db !== this.db) {
      throw new RingConnectionError(
        `database ${this.db} was refused by the server (SELECT failed; the connection is on database ${identity.db})`,
      );
    }
    this.judge(identity, client);
  }

  /** The dict cleared the node's entries: its data is vouched for from now on. */
  async vouch(client: Redis): Promise<void> {
    if (this.runId !== undefined) {
      await client.set(this.instanceKey, this.runId).catch((error: unknown) => {
        // Refused (an ACL that keeps the key out of reach): this process vouches alone.
        if (isConnectionError(error)) throw error;
      });
    }
    this.distrusted = undefined;
  }

  /**
   * The node is taken out of the ring (setNodes): the entries it keeps will not see the
   * writes made elsewhere from now on, so whichever process adds it back clears it first.
   */
  async retire(client: Redis): Promise<void> {
    await client.set(this.instanceKey, RETIRED);
  }

  private judge({ runId, vouchedFor }: ServerIdentity, client: Redis): void {
    // INFO refused (an ACL without it): a restart cannot be told; the data is trusted.
    if (runId === undefined) return;
    const before = this.runId;
    this.runId = runId;
    if (vouchedFor === runId) {
      // Another process cleared and vouched for it meanwhile.
      this.distrusted = undefined;
    } else if (vouchedFor === RETIRED) {
      this.distrusted =
        'the node was taken out of the ring: its data may be older than the last writes';
    } else if (vouchedFor !== undefined) {
      this.distrusted = `the server restarted or failed over (run_id ${short(vouchedFor)} → ${short(runId)}): its data may be older than the last writes`;
    } else if (before !== undefined && before !== runId) {
      this.distrusted = `the server restarted (run_id ${short(before)} → ${short(runId)}): its data may be older than the last writes`;
    } else if (this.distrusted === undefined) {
      // Never vouched for (a new server, or the first connection of this process): vouch now.
      client.set(this.instanceKey, runId, 'NX').catch(() => undefined);
    }
  }
}

/** What the trust key holds once the node left the ring: no server's run_id. */
const RETIRED = 'retired';

/** Enough of a run_id to tell two apart in a message. */
function short(runId: string): string {
  return runId.slice(0, 8);
}
