import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: child scripts resolve packages from its node_modules. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs an ES module script in a child Node process and answers its exit code and output.
 * A child still running after `timeoutMs` is killed and answers `code: null`: that is how
 * tests prove a process exits by itself.
 */
export async function runNodeScript(
  script: string,
  timeoutMs = 8000,
): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, timeoutMs);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode);
    });
  });
  return { code, stdout };
}
