import { afterAll, afterEach, beforeAll } from 'vitest';
import { resetFleet, startRedisServers, type RedisFleet } from './redis-fleet.js';

/** Something a test opened and the fixture must close after it, e.g. a RingDict. */
export interface Closable {
  close(): Promise<void>;
}

export interface RingFleetFixture {
  /** The servers, started before the suite's first test. */
  readonly fleet: RedisFleet;
  /** Closes `item` after the current test, whatever its outcome; answers it. */
  track<T extends Closable>(item: T): T;
  /** Closes a tracked `item` now, so that the end of the test does not close it again. */
  closeNow(item: Closable): Promise<void>;
}

/**
 * The usual life of a suite against real servers: `count` redis-servers started before the
 * first test; after each test, what it opened is closed and the servers are put back as they
 * were (resumed, restarted, emptied); after the last, every server is stopped by its pid.
 */
export function useRingFleet(count = 3): RingFleetFixture {
  let fleet: RedisFleet | undefined;
  const open: Closable[] = [];
  beforeAll(async () => {
    fleet = await startRedisServers(count);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((item) => item.close()));
    if (fleet) await resetFleet(fleet);
  });
  afterAll(async () => {
    await fleet?.stop();
  });
  return {
    get fleet(): RedisFleet {
      if (!fleet) throw new Error('the fleet starts in beforeAll: use it inside a test');
      return fleet;
    },
    track<T extends Closable>(item: T): T {
      open.push(item);
      return item;
    },
    async closeNow(item: Closable): Promise<void> {
      const at = open.indexOf(item);
      if (at >= 0) open.splice(at, 1);
      await item.close();
    },
  };
}
