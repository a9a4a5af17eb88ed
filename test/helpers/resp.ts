/**
 * A raw pipelined RESP client: every command on one connection at once, keys as bytes,
 * thousands of commands per round trip, replies parsed from RESP2. The nutcracker tests use it
 * to talk to twemproxy as any client would, and redisCommand to look at a server behind the
 * ring's back. Deliberately dependency-free (no ioredis): it has to work while the code under
 * test is broken.
 */
import { createConnection } from 'node:net';

/** Where every server the helpers start listens, so where every command goes. */
export const HOST = '127.0.0.1';

/** A reply: simple strings as text, integers as numbers, bulk strings as bytes, nil as null. */
export type RespReply = string | number | Buffer | null | RespError | RespReply[];

/** An error reply (`-ERR …`), returned in place rather than thrown, so one does not hide the rest. */
export class RespError {
  constructor(readonly message: string) {}
}

/** Where to connect: a TCP port on 127.0.0.1, or a unix socket path. */
export type RespTarget = number | { path: string };

function encode(command: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${command.length}\r\n`)];
  for (const arg of command) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function parse(buffer: Buffer, start: number): { reply: RespReply; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd === -1) return undefined;
  const type = buffer[start];
  const line = buffer.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (String.fromCharCode(type)) {
    case '+':
      return { reply: line, end: next };
    case '-':
      return { reply: new RespError(line), end: next };
    case ':':
      return { reply: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { reply: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { reply: buffer.subarray(next, next + length), end: next + length + 2 };
    }
    case '*': {
      const length = Number(line);
      if (length < 0) return { reply: null, end: next };
      const items: RespReply[] = [];
      let end = next;
      for (let i = 0; i < length; i++) {
        const item = parse(buffer, end);
        if (!item) return undefined;
        items.push(item.reply);
        end = item.end;
      }
      return { reply: items, end };
    }
    default:
      throw new Error(`unexpected RESP reply byte 0x${type.toString(16)}`);
  }
}

/**
 * Sends every command on one connection at once and resolves with their replies, in order.
 * Rejects on a connection error, a close before the last reply, or after `timeoutMs`.
 */
export function respPipeline(
  target: RespTarget,
  commands: readonly (readonly (string | Buffer)[])[],
  timeoutMs = 10_000,
): Promise<RespReply[]> {
  return new Promise((resolve, reject) => {
    if (commands.length === 0) {
      resolve([]);
      return;
    }
    const socket =
      typeof target === 'number'
        ? createConnection({ host: HOST, port: target })
        : createConnection({ path: target.path });
    const replies: RespReply[] = [];
    let pending: Buffer = Buffer.alloc(0);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const where = typeof target === 'number' ? `${HOST}:${target}` : target.path;
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new Error(
              `${where}: ${replies.length}/${commands.length} replies after ${timeoutMs} ms`,
            ),
          ),
        ),
      timeoutMs,
    );
    socket.once('connect', () => socket.write(Buffer.concat(commands.map(encode))));
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let offset = 0;
      try {
        for (;;) {
          const parsed = parse(pending, offset);
          if (!parsed) break;
          replies.push(parsed.reply);
          offset = parsed.end;
        }
      } catch (error) {
        settle(() => reject(error));
        return;
      }
      pending = pending.subarray(offset);
      if (replies.length >= commands.length) settle(() => resolve(replies));
    });
    socket.once('error', (error) => settle(() => reject(error)));
    socket.once('close', () =>
      settle(() =>
        reject(new Error(`${where} closed after ${replies.length}/${commands.length} replies`)),
      ),
    );
  });
}
