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
