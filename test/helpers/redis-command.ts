/**
 * Talks to a redis-server over a raw RESP socket: one command per fresh connection, the reply
 * as text. The server helpers use it for their readiness check, and the tests to look at a
 * server behind the ring's back (GET, EXISTS, CLIENT LIST) or to empty it (FLUSHALL).
 *
 * Deliberately dependency-free (no ioredis): it has to work while the code under test is
 * broken, and a raw RESP socket is all these commands need.
 */
import { createConnection } from 'node:net';

/** Where every server the helpers start listens, so where every command goes. */
export const HOST = '127.0.0.1';
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

function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

type Parsed = { value: string; error?: string; end: number } | undefined;

/**
 * Parses one RESP2 reply starting at `start`, or returns undefined while more bytes are
 * needed. Works on bytes because bulk lengths count bytes, not characters.
 */
function parseReply(buffer: Buffer, start: number): Parsed {
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[start]);
  const line = buffer.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
    case ':':
      return { value: line, end: next };
    case '-':
      return { value: line, error: line, end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: '(nil)', end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const length = Number(line);
      if (length < 0) return { value: '(nil)', end: next };
      const items: string[] = [];
      let end = next;
      for (let i = 0; i < length; i++) {
        const item = parseReply(buffer, end);
        if (!item) return undefined;
        items.push(item.value);
        end = item.end;
      }
      return { value: items.join('\n'), end };
    }
    default:
      throw new Error(`unexpected RESP reply: ${JSON.stringify(buffer.toString('utf8', start))}`);
  }
}

/** Sends one command on a fresh connection and resolves with the parsed reply. */
function sendCommand(port: number, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      outcome();
    };
    const timer = setTimeout(() => {
      const message = `no reply to ${args[0]} from ${HOST}:${port} within ${timeoutMs} ms`;
      settle(() => reject(new Error(message)));
    }, timeoutMs);
    socket.once('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      let reply: Parsed;
      try {
        reply = parseReply(received, 0);
      } catch (error) {
        settle(() => reject(error));
        return;
      }
      if (!reply) return;
      const { value, error } = reply;
      settle(() => (error === undefined ? resolve(value) : reject(new RedisReplyError(error))));
    });
    socket.once('error', (error) => settle(() => reject(error)));
    socket.once('close', () =>
      settle(() => reject(new Error(`${HOST}:${port} closed the connection without a reply`))),
    );
  });
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
