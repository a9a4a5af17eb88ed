import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineWatch } from '../../lib/core/node/deadline-watch.js';

/** One real turn of the event loop: what runs after the timers, once this turn's I/O is read. */
const afterIo = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('DeadlineWatch', () => {
  /** Time this process spent stalled: performance.now() runs ahead of the fake timers. */
  let stalled = 0;
  beforeEach(() => {
    stalled = 0;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.spyOn(performance, 'now').mockImplementation(() => Date.now() + stalled);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('expires once the oldest unanswered command has waited the timeout', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    vi.advanceTimersByTime(60);
    watch.sent();
    watch.answered(); // the first one
    vi.advanceTimersByTime(60); // 120 ms after the first, 60 ms after the second
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(39);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2); // 101 ms after the second
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('a batch whose rounds keep being answered never expires; a round that is not does', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent(); // a setMany: one request, pipelines one after another
    for (let round = 0; round < 10; round++) {
      vi.advanceTimersByTime(80);
      watch.progressed();
    }
    expect(expired).not.toHaveBeenCalled(); // 800 ms after it was sent
    vi.advanceTimersByTime(99);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2); // the last round waited 101 ms
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('never expires while every command is answered in time, and stops when idle', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    for (let i = 0; i < 50; i++) {
      watch.sent();
      vi.advanceTimersByTime(30);
      watch.answered();
    }
    expect(watch.pending).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(expired).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a timer that fires far too late (a stalled process) gives the node its time once more', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    // The process is busy for 300 ms: the timer due at 100 ms runs only at 400 ms.
    vi.advanceTimersByTime(50);
    stalled = 300;
    vi.advanceTimersByTime(50);
    // The timer ran 300 ms late: the process stalled, not the node.
    expect(expired).not.toHaveBeenCalled();
    // A reply read after the stall settles it.
    watch.answered();
    vi.advanceTimersByTime(500);
    expect(expired).not.toHaveBeenCalled();
    // No reply within the time given again: now it is the node.
    watch.sent();
    vi.advanceTimersByTime(50);
    stalled += 300;
    vi.advanceTimersByTime(50);
    vi.advanceTimersByTime(101);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('keeps start times in order while its queue wraps around and grows', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    // Move the head of the (16-slot) queue to its middle, so what follows wraps around.
    for (let i = 0; i < 10; i++) {
      watch.sent();
      watch.answered();
    }
    watch.sent(); // the oldest, at 0 ms
    vi.advanceTimersByTime(50);
    // One a millisecond from 50 ms on: the queue grows twice, the first time wrapped around
    // (grow() puts the oldest at index 0, so the second time it is not).
    for (let i = 0; i < 40; i++) {
      watch.sent();
      vi.advanceTimersByTime(1);
    }
    expect(watch.pending).toBe(41);
    watch.answered(); // the oldest: the next deadline is 50 + 100 ms
    vi.advanceTimersByTime(149 - 90); // 149 ms
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2); // 151 ms
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
    expect(watch.pending).toBe(40);
    watch.stop();
  });

  it('counts answers, never below zero, across many commands', () => {
    const watch = new DeadlineWatch(100, () => undefined);
    for (let i = 0; i < 5000; i++) watch.sent();
    for (let i = 0; i < 4000; i++) watch.answered();
    expect(watch.pending).toBe(1000);
    for (let i = 0; i < 2000; i++) watch.answered();
    expect(watch.pending).toBe(0);
    watch.stop();
  });

  it('a stall just short of the tolerance: replies read in the same turn settle before the deadline is judged', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    // The process is busy for 20 ms past the deadline: the timer runs 20 ms late, within the
    // tolerance, while the reply is already waiting in the socket.
    stalled = 20;
    vi.advanceTimersByTime(100);
    expect(expired).not.toHaveBeenCalled();
    watch.answered(); // this turn's I/O reads the reply
    await afterIo();
    expect(expired).not.toHaveBeenCalled();
    expect(watch.pending).toBe(0);
    // Without a reply in that turn: the command may have been written only as the stall
    // ended, so the node gets a whole timeout again, once; then it is late.
    watch.sent();
    stalled += 20;
    vi.advanceTimersByTime(100);
    await afterIo();
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(99);
    await afterIo();
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  // The timer's lateness is only the part of the stall past the deadline: given that long (10
  // ms), a node answering 30 ms after a command written at the stall's end was ejected.
  it('a stall a little longer than the timeout: a reply a round trip after it is in time', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    stalled = 10;
    vi.advanceTimersByTime(100);
    await afterIo();
    for (let waited = 0; waited < 30; waited += 5) {
      vi.advanceTimersByTime(5);
      await afterIo();
    }
    watch.answered();
    vi.advanceTimersByTime(100);
    await afterIo();
    expect(expired).not.toHaveBeenCalled();
  });

  // Given its time again at every late timer, a hung node was never ejected while the process
  // was blocked in a steady rhythm (30 ms every 70 ms, each new deadline inside a block).
  it('gives a command its time again once, however often the process stalls', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    for (let round = 0; round < 3 && expired.mock.calls.length === 0; round++) {
      stalled += 10;
      vi.advanceTimersByTime(100);
      await afterIo();
    }
    expect(expired).toHaveBeenCalledTimes(1);
    // A stall far past the tolerance, then another: once as well.
    watch.answered();
    watch.sent();
    stalled += 60;
    vi.advanceTimersByTime(100);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
    stalled += 60;
    vi.advanceTimersByTime(100);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(2);
  });

  it('a deadline that passes on time, with no stall, expires at once', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    vi.advanceTimersByTime(100);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('a command sent while a deadline is being confirmed arms no second timer', async () => {
    const expired = vi.fn();
    const watch = new DeadlineWatch(100, expired);
    watch.sent();
    stalled = 10;
    vi.advanceTimersByTime(100);
    watch.answered();
    watch.sent(); // sent in the same turn, before the confirmation
    expect(vi.getTimerCount()).toBe(0);
    await afterIo();
    expect(expired).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(101);
    await afterIo();
    expect(expired).toHaveBeenCalledTimes(1);
  });
});
