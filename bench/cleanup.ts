/**
 * Everything a benchmark starts (redis-server fleets, nutcracker, clients) registers how to
 * stop it here, so that it is stopped in the section's `finally` and also when the run is
 * interrupted (SIGINT / SIGTERM), where no `finally` would run.
 */
type Stopper = () => Promise<void> | void;

const stoppers = new Set<Stopper>();
let installed = false;
let signalled: NodeJS.Signals | undefined;

/** The signal that interrupted the run, if one did: the runner then prints nothing more. */
export function interruptedBy(): NodeJS.Signals | undefined {
  return signalled;
}

/** Registers `stop`; returns a function that runs it once and unregisters it. */
export function track(stop: Stopper): () => Promise<void> {
  stoppers.add(stop);
  return async () => {
    if (!stoppers.delete(stop)) return;
    await stop();
  };
}

/** Runs every registered stopper (last registered first), each at most once. */
export async function stopEverything(): Promise<void> {
  const pending = [...stoppers].reverse();
  stoppers.clear();
  for (const stop of pending) {
    try {
      await stop();
    } catch (error) {
      process.stderr.write(`bench: cleanup failed: ${(error as Error).message}\n`);
    }
  }
}

/** On SIGINT / SIGTERM: stop what we started, then exit with the signal's conventional code. */
export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    signalled = signal;
    process.stderr.write(`\nbench: ${signal}, stopping everything started by this run…\n`);
    const timer = setTimeout(() => process.exit(code), 5_000);
    timer.unref();
    void stopEverything().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => onSignal('SIGINT', 130));
  process.once('SIGTERM', () => onSignal('SIGTERM', 143));
}
