#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTwemproxyImport } from './twemproxy/format-import.js';
import { fromTwemproxy } from './twemproxy/from-twemproxy.js';
import { TwemproxyConfigError } from './twemproxy/twemproxy-config-error.js';

/*
 * The package's command line, `npx nestjs-ring-redis <command>`. Today one command:
 * `from-twemproxy`, which prints the RingDict options equivalent to a nutcracker pool.
 * Exit codes: 0 done, 2 bad usage or a config that cannot be imported.
 */

export const USAGE = `Usage: nestjs-ring-redis from-twemproxy <nutcracker.yml> [--pool NAME] [--ts]

Prints the RingDict group options (nodes, distribution: 'ketama', hash, hash tag, timeout)
that place every key on the server nutcracker places it on.

  --pool NAME   the pool to import (needed when the file defines several)
  --ts          print a TypeScript module instead of JSON
  -h, --help    show this help

Warnings about options with no equivalent go to stderr.
`;

/** Where the CLI writes and reads; injectable so tests need no child process. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  readFile(path: string): string;
}

const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  // Fatal: nutcracker refuses a file that is not UTF-8, and a lenient decode turned a Latin-1
  // server name into another one (U+FFFD) without a word.
  readFile: (path) => new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path)),
};

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export function runCli(argv: readonly string[], io: CliIo = processIo): number {
  const fail = (message: string, usage = false): number => {
    io.stderr(`nestjs-ring-redis: ${message}\n`);
    if (usage) io.stderr(`\n${USAGE}`);
    return 2;
  };
  if (argv.length === 0) {
    io.stderr(USAGE);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        pool: { type: 'string' },
        ts: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return fail((error as Error).message, true);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const [command, file, ...extra] = positionals;
  if (command !== 'from-twemproxy') {
    return fail(`unknown command ${JSON.stringify(command ?? '')}`, true);
  }
  if (file === undefined)
    return fail('from-twemproxy needs the path of a nutcracker YAML file', true);
  if (extra.length > 0) return fail(`unexpected argument ${JSON.stringify(extra[0])}`, true);

  let text: string;
  try {
    text = io.readFile(file);
  } catch (error) {
    return fail(`cannot read ${file}: ${unreadable(error)}`);
  }
  try {
    const result = fromTwemproxy(text, { pool: values.pool });
    for (const warning of result.warnings) io.stderr(`warning: ${warning}\n`);
    io.stdout(formatTwemproxyImport(result, values.ts ? 'ts' : 'json'));
    return 0;
  } catch (error) {
    if (error instanceof TwemproxyConfigError) return fail(`${file}: ${error.message}`);
    throw error;
  }
}

/** Why a file could not be read, by the error's code, in a few words. */
const UNREADABLE = new Map([
  ['ENOENT', 'no such file'],
  ['EISDIR', 'is a directory'],
  ['EACCES', 'permission denied'],
  ['ERR_ENCODING_INVALID_ENCODED_DATA', 'not UTF-8 text'],
]);

function unreadable(error: unknown): string {
  return UNREADABLE.get((error as NodeJS.ErrnoException).code ?? '') ?? (error as Error).message;
}

/** True when this file is the program node was started with (also through npm's bin link). */
function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  // Piped into `head`, the reader may leave before the output is written: not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  process.exitCode = runCli(process.argv.slice(2));
}
