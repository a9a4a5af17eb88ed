/**
 * How late a deadline timer may fire, as a fraction of the timeout, before the delay is put
 * down to this process (a long synchronous task, a slow boot) rather than to the node.
 */
const STALL_TOLERANCE = 0.25;

/**
 * A timer this late (ms) shows the event loop was blocked: a command sent just before the
 * stall may have been written only at its end (writes are batched until the turn's end, see
 * RingNode.batchWrites), so its reply cannot be there yet.
 */
const BLOCKED_MS = 5;

/** Start times held before the queue first grows; a power of two (it doubles when full). */
const INITIAL_CAPACITY = 16;

/**
 * One deadline for every command a node has in flight, instead of one timer per command.
 * A Redis connection answers in the order it was sent to, so the oldest unanswered command
 * is the first one sent and not yet answered: a single timer, set for that command's
 * deadline, notices a node that stopped answering as soon as a timer per command would.
 * A timer per command costs a setTimeout and a clearTimeout on every request; measured
 * here, ioredis' `commandTimeout` took 13 % of the ring's throughput at 64 in flight and 6 %
 * at 1 in flight.
 *
 * Answers are counted, not matched: when the replies of one socket read settle a few
 * requests in another order than they were sent, the oldest start time is retired for the
 * first of them. Any error is bounded by the time between those sends.
 */
export class DeadlineWatch {
  /**
   * Start times (performance.now()) of the commands in flight, oldest first from `head`: a
   * circular queue whose length is a power of two. Sending and answering allocate nothing
   * (an array emptied with `length = 0` would drop its storage, and take it again on the
   * next send, once per request at 1 in flight). It never shrinks: the most commands ever
   * in flight on the node, 8 B each, is what it keeps.
   */
  private started = new Float64Array(INITIAL_CAPACITY);
  private head = 0;
  private count = 0;
  private timer?: NodeJS.Timeout;
  /** When the armed timer is due, to tell a late timer (a stalled process) from a slow node. */
  private firesAt = 0;
  /** A deadline has passed and is being confirmed after the I/O of this turn (see check). */
  private confirming = false;
  /** The start time of the command last given its timeout again after a stall (see graceOnce). */
  private gracedStart = Number.NaN;

  constructor(
    private readonly timeoutMs: number,
    /** Called once the oldest command has waited `timeoutMs` without an answer. */
    private readonly onExpired: () => void,
  ) {}

  /** Commands sent and not yet answered. */
  get pending(): number {
    return this.count;
  }

  /** A command is being sent now. */
  sent(): void {
    const now = performance.now();
    if (this.count === this.started.length) this.grow();
    this.started[(this.head + this.count) & (this.started.length - 1)] = now;
    this.count++;
    if (this.timer === undefined && !this.confirming) this.arm(now, this.timeoutMs);
  }

  /** A command was answered, or failed. */
  answered(): void {
    if (this.count === 0) return;
    this.head = (this.head + 1) & (this.started.length - 1);
    this.count--;
  }

  /**
   * The oldest command sent is a batch sending its pipelines one after another, and one of
   * them was just answered: the node is answering. Its deadline now runs from the pipeline it
   * sends next. (A connection answers in order, so nothing sent before that pipeline is
   * still waiting.) Without this, a batch longer than `timeoutMs` would expire a healthy node.
   */
  progressed(): void {
    if (this.count > 0) this.started[this.head] = performance.now();
  }

  /** Twice the room, the start times in order from index 0. */
  private grow(): void {
    const grown = new Float64Array(this.started.length * 2);
    const tail = this.started.subarray(this.head);
    grown.set(tail);
    grown.set(this.started.subarray(0, this.head), tail.length);
    this.started = grown;
    this.head = 0;
  }

  /** Stops watching (the node is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(now: number, delay: number): void {
    this.firesAt = now + delay;
    this.timer = setTimeout(this.check, delay);
    // The sockets of the commands in flight keep the process alive, not this timer.
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.pending === 0) return;
    const now = performance.now();
    const late = now - this.firesAt;
    // This timer fired far too late: this process was stalled, and the replies may be waiting
    // unread in the socket. Give the node its time once more rather than blame it.
    if (late > this.timeoutMs * STALL_TOLERANCE && this.graceOnce(now)) return;
    const due = this.started[this.head] + this.timeoutMs;
    if (now < due) this.arm(now, due - now);
    else {
      // Timers run before the turn's I/O: after a stall just short of the tolerance above, the
      // replies may be sitting unread in the socket. Judge again once they have been read.
      this.confirming = true;
      setImmediate(() => this.confirm(late));
    }
  };

  /**
   * The deadline passed before this turn's I/O; still passed after it: the node is late —
   * unless this process was blocked (the timer ran more than BLOCKED_MS late): then the node
   * gets a whole timeout again, once, for the commands written only when the block ended. The
   * timer's lateness is only the part of the block past the deadline: given that long, a node
   * that answered a command written at the end of a block of 1.05–1.2 × the timeout 30–100 ms
   * later was ejected, where a longer block ejected nothing.
   */
  private confirm(late: number): void {
    this.confirming = false;
    if (this.pending === 0 || this.timer !== undefined) return;
    const now = performance.now();
    const due = this.started[this.head] + this.timeoutMs;
    if (now < due) this.arm(now, due - now);
    else if (!(late > BLOCKED_MS && this.graceOnce(now))) this.onExpired();
  }

  /**
   * Gives the oldest command a whole timeout again, once: false when it had it already. Each
   * time was a block of this process, but a block every few tens of ms (30 ms every 70) made
   * each new deadline late again, and a hung node was never ejected.
   */
  private graceOnce(now: number): boolean {
    const oldest = this.started[this.head];
    if (oldest === this.gracedStart) return false;
    this.gracedStart = oldest;
    this.arm(now, this.timeoutMs);
    return true;
  }
}
