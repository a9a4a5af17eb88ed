// Compiles lib, sample, bench and the test helpers into `.run/`, for the tests' child processes
// and for `npm run sample | bench | soak | chaos:cluster`.
//
// tsc rewrites every output in place (truncate, then write), changed or not: a child process of
// a test run on the same checkout that loads `.run/` meanwhile can read an empty module and die
// at start-up (a chaos worker "exited before it was ready": code 1 with "does not provide an
// export named …", or code 0 when its own script was the empty file). So tsc emits into a
// directory of its own at the same depth (the source maps' relative paths stay right), and only
// the files that changed are renamed into `.run/`: atomic on one file system, so a reader sees
// the old file or the new one, never a torn one.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Compiles into `.run/` (relative to the working directory, the package's root); answers tsc's
 * exit status. Type errors still emit: the typecheck step reports them.
 *
 * @param {{ quiet?: boolean }} [options] quiet: tsc's diagnostics not printed (the tests' setup)
 * @returns {number}
 */
export function compileRun({ quiet = false } = {}) {
  const staging = `.run-compile-${process.pid}`;
  try {
    const result = spawnSync(
      process.execPath,
      ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.run.json', '--outDir', staging],
      { stdio: quiet ? 'ignore' : 'inherit' },
    );
    if (result.error) throw result.error;
    publish(staging, '.run');
    return result.status ?? 1;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Renames every file of `from` over its copy in `to`, unless the copy is the same already.
 *
 * @param {string} from
 * @param {string} to
 */
function publish(from, to) {
  for (const entry of readdirSync(from, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    if (sameContent(source, target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    renameSync(source, target);
  }
}

/**
 * @param {string} a
 * @param {string} b
 */
function sameContent(a, b) {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = compileRun();
