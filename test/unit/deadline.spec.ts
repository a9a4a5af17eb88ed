import { describe, expect, it } from 'vitest';
import { atDeadline } from '../../lib/nest/ring-cached/deadline.js';

/** The soft timeout's deadline on its own: never early, cancellable, for past deadlines too. */

function firedAt(deadline: number): Promise<number> {
  return new Promise((resolve) => atDeadline(deadline, () => resolve(performance.now())));
}

describe('atDeadline', () => {
  it('fires at or after its deadline, never before', async () => {
    for (const ms of [0.3, 1, 2.5, 7, 20]) {
      const deadline = performance.now() + ms;
      expect(await firedAt(deadline)).toBeGreaterThanOrEqual(deadline);
    }
  });

  it('fires on the next turn for a deadline already past', async () => {
    let fired = false;
    atDeadline(performance.now() - 5, () => (fired = true));
    expect(fired).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(fired).toBe(true);
  });

  it('never fires once cancelled, in its timer or in its last turns', async () => {
    let fired = 0;
    atDeadline(performance.now() + 10, () => fired++)();
    const inLastTurns = atDeadline(performance.now() + 3, () => fired++);
    await new Promise((resolve) => setTimeout(resolve, 1.5));
    inLastTurns();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fired).toBe(0);
  });

  it('serves many deadlines in their last stretch together, each at its own time', async () => {
    const base = performance.now() + 3;
    const fired: { deadline: number; at: number }[] = [];
    const cancels = Array.from({ length: 100 }, (_, i) => {
      const deadline = base + (i % 10) * 0.2;
      return atDeadline(deadline, () => fired.push({ deadline, at: performance.now() }));
    });
    cancels.filter((_, i) => i % 4 === 0).forEach((cancel) => cancel());
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fired).toHaveLength(75);
    for (const { deadline, at } of fired) expect(at).toBeGreaterThanOrEqual(deadline);
  });

  it('a fire that throws stops no other deadline due in the same turn; the error is not lost', async () => {
    const errors: unknown[] = [];
    const onError = (error: unknown): void => void errors.push(error);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onError);
    try {
      const deadline = performance.now() + 1;
      let second = false;
      atDeadline(deadline, () => {
        throw new Error('the first fire throws');
      });
      atDeadline(deadline, () => (second = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(second).toBe(true);
      expect(errors).toEqual([new Error('the first fire throws')]);
    } finally {
      process.off('uncaughtException', onError);
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
  });

  it('a deadline cancelled by the fire of another due in the same turn does not fire', async () => {
    const deadline = performance.now() + 1;
    let fired = false;
    let cancelSecond = (): void => undefined;
    atDeadline(deadline, () => cancelSecond());
    cancelSecond = atDeadline(deadline, () => (fired = true));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fired).toBe(false);
  });

  it('a deadline past what a Node timer can hold sets no timer Node would cut to 1 ms', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      let fired = false;
      const idleBefore = performance.eventLoopUtilization();
      const cancel = atDeadline(performance.now() + 2 ** 32, () => (fired = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      // The loop slept meanwhile: nothing turned it while waiting for the deadline.
      expect(performance.eventLoopUtilization(idleBefore).utilization).toBeLessThan(0.5);
      cancel();
      expect(fired).toBe(false);
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('atDeadline under a stream of deadlines', () => {
  it('turns the loop without sleeping for at most a tenth of the time; deadlines still never fire early', async () => {
    // A slow backend: a call past its soft timeout every millisecond for 1.5 s, each deadline
    // 5 ms away. Without the budget the loop never sleeps (a whole core).
    const fired: { deadline: number; at: number }[] = [];
    const before = performance.eventLoopUtilization();
    const until = performance.now() + 1_500;
    while (performance.now() < until) {
      const deadline = performance.now() + 5;
      atDeadline(deadline, () => fired.push({ deadline, at: performance.now() }));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    const busy = performance.eventLoopUtilization(before).utilization;
    expect(fired.length).toBeGreaterThan(100);
    for (const { deadline, at } of fired) expect(at).toBeGreaterThanOrEqual(deadline);
    // 10 % turning, plus a timer or two each millisecond; unbounded, this is above 0.9.
    expect(busy).toBeLessThan(0.5);
  });
  it('over the budget and back, each deadline fires once and never early; a cancelled one never', async () => {
    // Deadlines from 0.5 ms past to 5.5 ms ahead, five a turn, a fifth of the earlier ones
    // cancelled, turns made long by work: the budget runs out and comes back meanwhile.
    let seed = 12345;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const fired = new Map<number, number>();
    const early: number[] = [];
    const cancelled = new Set<number>();
    const cancels: (() => void)[] = [];
    const until = performance.now() + 1_200;
    let count = 0;
    while (performance.now() < until) {
      for (let k = 0; k < 5; k++) {
        const id = count++;
        const deadline = performance.now() + random() * 6 - 0.5;
        cancels[id] = atDeadline(deadline, () => {
          fired.set(id, (fired.get(id) ?? 0) + 1);
          if (performance.now() < deadline) early.push(id);
        });
        const victim = Math.floor(random() * count);
        if (random() < 0.2 && !fired.has(victim)) {
          cancelled.add(victim);
          cancels[victim]();
        }
      }
      const busyUntil = performance.now() + 0.3;
      while (performance.now() < busyUntil);
      await new Promise((resolve) => setTimeout(resolve, random() < 0.5 ? 0 : 1));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(early).toEqual([]);
    for (let id = 0; id < count; id++) {
      expect(fired.get(id) ?? 0, `deadline ${id}`).toBe(cancelled.has(id) ? 0 : 1);
    }
  });
});
