import { setImmediate } from 'node:timers';

/**
 * Knows when this process last polled its sockets, so a near hit is not served while an
 * invalidation may wait unread: after a long synchronous task (or a stall, or a loop that runs
 * only microtasks), the entry in memory may have been superseded a while ago, and the message
 * saying so sits in the kernel until the loop polls.
 *
 * Node does not say when the loop polls, but a `setImmediate` callback runs in the check phase,
 * after a poll whose callbacks have all run, and one scheduled from it runs a turn later, after
 * the next poll. So when our callback runs, every byte delivered before the previous run of it
 * has been read and handled (the invalidation channel handles its messages synchronously). The
 * loop's idle time cannot move that stamp on: it is counted up to when the loop next runs, and a
 * process starved of CPU can run well after the poll sampled its sockets. The callback is
 * scheduled only while hits ask for it: an idle process does no work for it. It is Node's own
 * `setImmediate`, taken from `node:timers`, which a test's fake timers do not replace.
 *
 * A poll reads at most 2 MiB from one socket: should more invalidations than that wait after a
 * stall, the rest are read a turn later, while this stamp already says they were read.
 */
export class PollFence {
  /** A time before which everything delivered to this process has been read. */
  private polledAt = Number.NEGATIVE_INFINITY;
  /** When the check-phase callback last ran. */
  private turnedAt = Number.NEGATIVE_INFINITY;
  private armed = false;
  /** Hits waiting for a poll, oldest first, each with when it began. */
  private readonly waiters: { since: number; resolve: () => void }[] = [];

  /** `maxLagMs`: how long a hit may go without a poll (the `nearCache.maxLag` option). */
  constructor(private readonly maxLagMs: number) {}

  /** Whether a hit may be served at `now` (performance.now()) without waiting for a poll. */
  fresh(now: number): boolean {
    const lag = now - this.polledAt;
    // Half-way, the next turn is asked for: while hits flow and the loop turns, the stamp moves
    // before it is too old, and a turn per half bound costs less than one per turn of the loop.
    if (lag > this.maxLagMs / 2) this.arm();
    return lag <= this.maxLagMs;
  }

  /**
   * Resolves once everything delivered up to `maxLag` before this call has been read: one or
   * two turns of the loop.
   */
  polled(): Promise<void> {
    this.arm();
    const since = performance.now();
    return new Promise((resolve) => this.waiters.push({ since, resolve }));
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
    let ready = 0;
    while (
      ready < this.waiters.length &&
      this.waiters[ready].since - this.maxLagMs <= this.polledAt
    ) {
      ready++;
    }
    for (const waiter of this.waiters.splice(0, ready)) waiter.resolve();
    if (this.waiters.length > 0) this.arm();
  };
}
