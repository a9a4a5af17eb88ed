import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { PollFence } from '../../lib/core/near/poll-fence.js';

/**
 * The near cache's fence on its own: a hit is fresh only while this process has read its
 * sockets lately, and `polled()` waits until bytes delivered before the call have been handled.
 */

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Synchronous: no I/O is read meanwhile.
  }
}

describe('PollFence', () => {
  it('is fresh only within its bound of a poll', async () => {
    const fence = new PollFence(1);
    expect(fence.fresh(performance.now())).toBe(false);
    await fence.polled();
    expect(fence.fresh(performance.now())).toBe(true);
    busy(3);
    expect(fence.fresh(performance.now())).toBe(false);
    await fence.polled();
    expect(fence.fresh(performance.now())).toBe(true);
  });

  it('waits until what was delivered during a synchronous task has been read', async () => {
    const receiver = createSocket('udp4');
    receiver.bind(0, '127.0.0.1');
    await once(receiver, 'listening');
    try {
      let received = 0;
      receiver.on('message', () => received++);
      const fence = new PollFence(1);
      for (let round = 1; round <= 5; round++) {
        // Another process sends while this one runs synchronously: the datagram waits in the
        // kernel until the loop polls.
        const { port } = receiver.address();
        execFileSync(process.execPath, [
          '-e',
          `const s = require('node:dgram').createSocket('udp4');
           s.send('x', ${port}, '127.0.0.1', () => s.close());`,
        ]);
        expect(received).toBe(round - 1);
        await fence.polled();
        expect(received).toBe(round);
      }
    } finally {
      receiver.close();
    }
  });

  it('lets a hit waiting within its bound of the last turn go on after the next turn', async () => {
    const fence = new PollFence(50);
    await fence.polled();
    // The last turn was moments ago: the next one is after a poll that began after it.
    let turns = 0;
    let waiting = true;
    const count = (): void => {
      turns++;
      if (waiting) setImmediate(count);
    };
    setImmediate(count);
    await fence.polled();
    waiting = false;
    expect(turns).toBe(1);
  });

  it('lets a loop of hits go on while the event loop turns', async () => {
    const fence = new PollFence(1);
    await fence.polled();
    let checks = 0;
    let stale = 0;
    const end = performance.now() + 50;
    while (performance.now() < end) {
      // A turn of the loop every 100 hits keeps the fence fresh; only a turn slower than the
      // bound (a collection, a descheduled process) makes the hits after it wait.
      for (let i = 0; i < 100; i++, checks++) if (!fence.fresh(performance.now())) stale++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(stale).toBeLessThan(checks / 2);
  });
});
