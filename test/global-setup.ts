import { execFileSync } from 'node:child_process';

/**
 * Some tests run the package in a child process (to prove it lets the process exit, or that
 * two processes agree on placement). They load the compiled output in `.run/`; compile it
 * once for the whole run.
 */
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.run.json'], {
    stdio: 'inherit',
  });
}
