import type { Redis } from 'ioredis';
import { pipelineReplies } from './pipeline.js';

/** A connection this node opened before, as the server knows it. */
export interface PastConnection {
  /** `CLIENT ID` on the server. */
  id: string;
  /** The client's address as the server sees it (`addr=` of CLIENT INFO). */
  addr: string;
}

/**
 * What a fresh connection learned about its server. A field is undefined when the server
 * refused the command (an ACL without CLIENT or INFO): the check it serves is skipped.
 */
export interface ServerIdentity {
  /** This connection, as the server knows it. */
  connection?: PastConnection;
  /** The database the connection is on. */
  db?: number;
  /** The server process (`run_id`): changes when the server restarts or fails over. */
  runId?: string;
  /** The run_id the server's data was last vouched for under (see RingNode), if any. */
  vouchedFor?: string;
  /** The longest value the server accepts (`proto-max-bulk-len`; CONFIG may be refused). */
  maxBulkBytes?: number;
}

/**
 * The first commands on a fresh connection, in one round trip, before any of the ring's:
 * - `CLIENT KILL ID … ADDR …` of the node's earlier connections that may still be open on the
 *   server. A connection given up on (a timeout, a hung or cut link) can still hold writes in
 *   a buffer on the way, which would land whenever the link delivers them: after the node is
 *   back and newer values were written. Once killed, nothing of it can be executed any more.
 *   ID and ADDR together: a restarted server reuses small ids, never with the same address.
 * - `CLIENT INFO`: this connection's id, address and database (ioredis goes on after a refused
 *   SELECT, on database 0).
 * - `INFO server` for `run_id`, and GET of the key vouching for the data (`instanceKey`).
 * - `CONFIG GET proto-max-bulk-len`: a longer value would close the connection (PayloadLimit).
 */
export async function handshake(
  client: Redis,
  earlier: readonly PastConnection[],
  instanceKey: string,
): Promise<ServerIdentity> {
  const pipeline = client.pipeline();
  for (const { id, addr } of earlier) pipeline.call('CLIENT', 'KILL', 'ID', id, 'ADDR', addr);
  pipeline.client('INFO').info('server').get(instanceKey).config('GET', 'proto-max-bulk-len');
  // Connection errors are thrown; a reply error (NOPERM) only leaves its field undefined.
  const replies = await pipelineReplies(pipeline.exec());
  const [
    [infoError, clientInfo],
    [serverError, serverInfo],
    [markError, vouchedFor],
    [configError, config],
  ] = replies.slice(earlier.length);
  const identity: ServerIdentity = {};
  if (!infoError) {
    const fields = infoFields(String(clientInfo), ' ');
    const id = fields.get('id');
    const addr = fields.get('addr');
    if (id !== undefined && addr !== undefined) identity.connection = { id, addr };
    const db = Number(fields.get('db'));
    if (Number.isInteger(db)) identity.db = db;
  }
  if (!serverError) identity.runId = infoFields(String(serverInfo), '\n').get('run_id');
  if (!markError && typeof vouchedFor === 'string') identity.vouchedFor = vouchedFor;
  const maxBulk = Array.isArray(config) ? Number(config[1]) : Number.NaN;
  if (!configError && Number.isSafeInteger(maxBulk) && maxBulk > 0) identity.maxBulkBytes = maxBulk;
  return identity;
}

/** `name=value` (CLIENT INFO, split on spaces) or `name:value` (INFO, split on lines) pairs. */
function infoFields(text: string, separator: ' ' | '\n'): Map<string, string> {
  const fields = new Map<string, string>();
  const equals = separator === ' ' ? '=' : ':';
  for (const part of text.split(separator)) {
    const at = part.indexOf(equals);
    if (at > 0) fields.set(part.slice(0, at), part.slice(at + 1).trim());
  }
  return fields;
}
