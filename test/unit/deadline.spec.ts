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
});
