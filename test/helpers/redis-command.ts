/**
 * Talks to a redis-server over a raw RESP socket: one command per fresh connection, the reply
 * as text. The server helpers use it for their readiness check, and the tests to look at a
 * server behind the ring's back (GET, EXISTS, CLIENT LIST) or to empty it (FLUSHALL).
 *
 * Deliberately dependency-free (no ioredis): it has to work while the code under test is
 * broken, and a raw RESP socket is all these commands need.
 */
import { HOST, respPipeline, RespError, type RespReply } from './resp.js';

export { HOST };

/** How long redisCommand() waits for a reply, so a hung server fails a test, not stalls it. */
const COMMAND_TIMEOUT_MS = 5_000;

/** An error reply (`-ERR ...`, `-NOAUTH ...`) to a command sent with {@link redisCommand}. */
export class RedisReplyError extends Error {
  /** The reply line without its leading `-`, e.g. `NOAUTH Authentication required.` */
  readonly reply: string;

  constructor(reply: string) {
    super(reply);
    this.name = 'RedisReplyError';
    this.reply = reply;
  }
}

/** A reply as redis-cli would print it, more or less: see {@link redisCommand}. */
function asText(reply: RespReply): string {
  if (reply === null) return '(nil)';
  if (reply instanceof RespError) return reply.message;
  if (Array.isArray(reply)) return reply.map(asText).join('\n');
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
}

/** Sends one command on a fresh connection and resolves with its reply as text. */
async function sendCommand(
  port: number,
  args: readonly string[],
  timeoutMs: number,
): Promise<string> {
  const [reply] = await respPipeline(port, [args], timeoutMs);
  if (reply instanceof RespError) throw new RedisReplyError(reply.message);
  return asText(reply);
}

/**
 * Sends one command over a raw socket and resolves with the reply as text: simple strings
 * (`'OK'`), integers (`'3'`) and bulk strings (the value) as they are, nil as `'(nil)'` (as
 * redis-cli prints it), arrays as their items joined by newlines. An error reply (`-ERR ...`,
 * `-NOAUTH ...`) rejects with a {@link RedisReplyError} carrying its text, so a failing
 * FLUSHALL cannot go unnoticed. Gives up after 5 s, so a hung server fails a test instead of
 * stalling it.
 */
export async function redisCommand(port: number, ...args: string[]): Promise<string> {
  if (args.length === 0) throw new Error('redisCommand needs a command');
  return sendCommand(port, args, COMMAND_TIMEOUT_MS);
}

/** Whether something on the port answers PING with any RESP reply (-NOAUTH counts as up). */
export async function probe(port: number, timeoutMs: number): Promise<boolean> {
  try {
    await sendCommand(port, ['PING'], timeoutMs);
    return true;
  } catch (error) {
    return error instanceof RedisReplyError;
  }
}

/**
 * How many times the servers on `ports` have run each of `commands` (lower case, as INFO
 * commandstats names them) so far, summed.
 */
export async function commandCalls(
  ports: readonly number[],
  commands: readonly string[],
): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const stats = await redisCommand(port, 'INFO', 'commandstats');
    for (const command of commands) {
      total += Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    }
  }
  return total;
}
