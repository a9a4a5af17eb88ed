/** Keys of flights held back until a time (performance.now()): grace's backoff, refresh-ahead's. */

/** Entries kept before the expired ones are swept. */
const SWEEP_SIZE = 10_000;

/** `flight` is held back for `ms` from now; past SWEEP_SIZE, the expired go first. */
export function hold(holds: Map<string, number>, flight: string, ms: number): void {
  const now = performance.now();
  if (holds.size >= SWEEP_SIZE) {
    for (const [held, until] of holds) if (until <= now) holds.delete(held);
  }
  holds.set(flight, now + ms);
}

export function isHeld(holds: ReadonlyMap<string, number>, flight: string): boolean {
  const until = holds.get(flight);
  return until !== undefined && performance.now() < until;
}
