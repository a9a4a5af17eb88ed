import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/**
 * Some tests run the package in a child process (to prove it lets the process exit, or that
 * two processes agree on placement). They load the compiled output in `.run/`; compile it
 * once for the whole run. Type errors are the typecheck step's business: tsc still emits,
 * so only a compiler that could not run at all stops the tests here.
 *
 * tsc rewrites every output in place (truncate, then write), changed or not: a child process
 * of another test run on the same checkout that loads `.run/` meanwhile can read an empty
 * module and die at start-up (a chaos worker "exited before it was ready": code 1 with "does
 * not provide an export named …", or code 0 when its own script was the empty file). So tsc
 * emits into a directory of its own at the same depth (the source maps' relative paths stay
 * right), and only the files that changed are renamed into `.run/`: atomic on one file
 * system, so a reader sees the old file or the new one, never a torn one.
 */
export default function setup(): void {
  const staging = `.run-compile-${process.pid}`;
  try {
    const result = spawnSync(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.run.json', '--outDir', staging],
      { stdio: 'ignore' },
    );
    if (result.error) throw result.error;
    publish(staging, '.run');
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Renames every file of `from` over its copy in `to`, unless the copy is the same already. */
function publish(from: string, to: string): void {
  for (const entry of readdirSync(from, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    if (sameContent(source, target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    renameSync(source, target);
  }
}

function sameContent(a: string, b: string): boolean {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}
