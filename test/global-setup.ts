import { compileRun } from '../scripts/compile-run.mjs';

/**
 * Some tests run the package in a child process (to prove it lets the process exit, or that
 * two processes agree on placement). They load the compiled output in `.run/`; compile it
 * once for the whole run (see scripts/compile-run.mjs: changed files only, each renamed in,
 * so another run's child processes never load a torn module). Type errors are the typecheck
 * step's business: tsc still emits, so only a compiler that could not run at all stops the
 * tests here.
 */
export default function setup(): void {
  compileRun({ quiet: true });
}
