import { describe, expect, it } from 'vitest';
import { stallAwareTimer } from '../../lib/core/node/connect-timer.js';

/** The connect's timer: its time, once more after a stall of this process, and a cancel. */

const waitFor = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // This process stalls: the timer fires late.
  }
}

describe('stallAwareTimer', () => {
  it('fires once its time has passed', async () => {
    const started = performance.now();
    let firedAt = 0;
    stallAwareTimer(30, () => (firedAt = performance.now()));
    await waitFor(80);
    expect(firedAt - started).toBeGreaterThanOrEqual(29);
  });

  it('fires nothing once cancelled', async () => {
    let fired = false;
    const cancel = stallAwareTimer(20, () => (fired = true));
    cancel();
    await waitFor(60);
    expect(fired).toBe(false);
  });

  it('gives the node its time once more after a stall of this process', async () => {
    let firedAt = 0;
    stallAwareTimer(40, () => (firedAt = performance.now()));
    busy(100);
    const stallEnded = performance.now();
    await waitFor(20);
    expect(firedAt).toBe(0);
    await waitFor(100);
    expect(firedAt - stallEnded).toBeGreaterThanOrEqual(39);
  });
});
