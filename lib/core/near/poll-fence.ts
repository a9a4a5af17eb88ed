/**
 * How long a near hit may go without this process having read its sockets: beyond it, the hit
 * first lets the event loop poll for I/O, so an invalidation already delivered is read before
 * the entry is served. 1 ms, the slack the stale-read analyser grants between processes' clocks:
 * a read that begins more than that after another process's write completed must not answer
 * the old value. A loop that awaits only hits (every hit a microtask) yields once a millisecond
 * for two turns of the loop; bench section 12 measures what that costs.
 */
export const NEAR_MAX_LAG_MS = 1;

/**
 * Knows when this process last polled its sockets, so a near hit is not served while an
 * invalidation may wait unread: after a long synchronous task (or a stall, or a loop that runs
 * only microtasks), the entry in memory may have been superseded a while ago, and the message
 * saying so sits in the kernel until the loop polls.
 *
 * Node does not say when the loop polls, but a `setImmediate` callback runs in the check phase,
 * right after a poll, and one scheduled from it runs a turn later, after the next poll. So when
 * our callback runs, the previous run of it is a time before which every byte delivered has been
 * read and handled (the invalidation channel handles its messages synchronously). The callback
 * is scheduled only while hits ask for it: an idle process does no work for it.
 */
export class PollFence {
  /** A time before which everything delivered to this process has been read. */
  private polledAt = Number.NEGATIVE_INFINITY;
  /** When the check-phase callback last ran. */
  private turnedAt = Number.NEGATIVE_INFINITY;
  private armed = false;
  /** Waiting for a poll after the next turn; then waiting for the turn after that. */
  private waiting: Barrier | undefined;
  private ripening: Barrier | undefined;

  constructor(private readonly maxLagMs: number = NEAR_MAX_LAG_MS) {}

  /** Whether a hit may be served at `now` (performance.now()) without waiting for a poll. */
  fresh(now: number): boolean {
    const lag = now - this.polledAt;
    // Half-way: the next turn is asked for, so a loop that turns keeps hits flowing.
    if (lag > this.maxLagMs / 2) this.arm();
    return lag <= this.maxLagMs;
  }

  /** Resolves once the loop has polled for I/O, and handled what it read, after this call. */
  polled(): Promise<void> {
    this.arm();
    this.waiting ??= barrier();
    return this.waiting.promise;
  }

  private arm(): void {
    if (this.armed) return;
    this.armed = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    this.armed = false;
    this.polledAt = this.turnedAt;
    this.turnedAt = performance.now();
    // Those waiting since before the previous turn have had a poll since: they may go on.
    const ready = this.ripening;
    this.ripening = this.waiting;
    this.waiting = undefined;
    if (this.ripening !== undefined) this.arm();
    ready?.resolve();
  };
}

interface Barrier {
  promise: Promise<void>;
  resolve: () => void;
}

function barrier(): Barrier {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}
