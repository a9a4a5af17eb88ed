import { spawnSync } from 'node:child_process';

/**
 * Some tests run the package in a child process (to prove it lets the process exit, or that
 * two processes agree on placement). They load the compiled output in `.run/`; compile it
 * once for the whole run. Type errors are the typecheck step's business: tsc still emits,
 * so only a compiler that could not run at all stops the tests here.
 */
export default function setup(): void {
  const result = spawnSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.run.json'],
    { stdio: 'ignore' },
  );
  if (result.error) throw result.error;
}
