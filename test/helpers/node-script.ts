import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { installExitHandler, liveChildren } from './process-registry.js';

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

/** A child Node process that a test kills by its pid; see `startNodeScript`. */
export interface RunningScript {
  /** Resolves with the first line of its output that matches `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGKILL, by its pid; resolves once it has exited. */
  kill(): Promise<void>;
}

/**
 * Starts an ES module script in a child Node process and leaves it running, for a test that
 * kills it mid-flight (a lock holder that dies). It is killed at the latest when the test
 * process exits.
 */
export function startNodeScript(script: string): RunningScript {
  installExitHandler();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  liveChildren.add(child);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  void exited.then(() => liveChildren.delete(child));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    async line(pattern, timeoutMs = 8_000) {
      const start = performance.now();
      for (;;) {
        const found = output.split('\n').find((line) => pattern.test(line));
        if (found !== undefined) return found;
        if (child.exitCode !== null)
          throw new Error(`the script exited (${child.exitCode}): ${output}`);
        if (performance.now() - start > timeoutMs) {
          throw new Error(`no line matching ${pattern} within ${timeoutMs} ms: ${output}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
