import { spawn } from 'node:child_process';

/*
 * Child processes for the packaging tests: npm and node runs with a clean environment, a
 * deadline, and their output kept for the failure message.
 */

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * The environment for nested npm/node runs. Under `npm test`, npm exports its own state
 * (npm_config_local_prefix pointing at this repository, npm_package_*, npm_lifecycle_*,
 * INIT_CWD): an `npm install` in the consumer that inherited it could act on this repository.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      /^npm_(package_|lifecycle_|command$|config_local_prefix$|execpath$|node_execpath$)/i.test(
        name,
      )
    )
      continue;
    if (name === 'INIT_CWD') continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs a command to completion (killing it after `timeoutMs`), capturing its output. */
export function runCommand(
  command: string,
  args: string[],
  options: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

export function describeRun(label: string, result: RunResult): string {
  return `${label}: code ${String(result.code)}, signal ${String(result.signal)}${result.timedOut ? ' (timed out)' : ''}\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
}
