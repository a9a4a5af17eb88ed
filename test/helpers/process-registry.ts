import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * What the test helpers (redis-server, sentinel, nutcracker) started and have not cleaned up
 * yet. One synchronous exit handler kills every such child by its own pid and removes the
 * temporary directories, so a crashed or process.exit()ed run leaks nothing.
 */
export const liveChildren = new Set<ChildProcess>();
export const liveDirs = new Set<string>();
let exitHandlerInstalled = false;

export function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  // 'exit' handlers must be synchronous: no waiting, just make sure our children die with us.
  process.on('exit', () => {
    for (const child of liveChildren) {
      if (child.pid === undefined || child.pid <= 0) continue;
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone between its exit and our bookkeeping.
      }
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Best effort: a leftover temporary directory is harmless.
      }
    }
  });
}

/** How long a process may take to exit after SIGTERM before it gets SIGKILL. */
export const STOP_GRACE_MS = 2_000;

/** Waits for `exited` at most `graceMs`; answers whether the process exited in time. */
export async function exitedWithin(
  exited: Promise<void>,
  graceMs = STOP_GRACE_MS,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const outcome = await Promise.race([exited.then(() => true as const), gaveUp]);
  clearTimeout(timer);
  return outcome;
}
