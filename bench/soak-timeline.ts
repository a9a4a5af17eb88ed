/**
 * The flapping node and what happened around it: each kill, hang and recovery, the ring's
 * events and the event loop's stalls, on one timeline that explains the slow calls.
 */
import { performance } from 'node:perf_hooks';
import type { RingDict } from '../lib/index.js';
import type { RedisServer } from '../test/helpers/redis-servers.js';
import { sleep } from './measure.js';
import { COMMAND_TIMEOUT, NAMES, STALL_PERIOD_MS, type Options } from './soak-config.js';

/** The flaps the soak caused, and how often the ring noticed a node leave and come back. */
export interface Flaps {
  kill: number;
  hang: number;
  ejected: number;
  rediscovered: number;
}

export class Timeline {
  /** What happened when (performance.now()), to explain slow calls. */
  readonly entries: { at: number; what: string }[] = [];
  readonly flaps: Flaps = { kill: 0, hang: 0, ejected: 0, rediscovered: 0 };
  worstStall = 0;

  log(what: string): void {
    this.entries.push({ at: performance.now(), what });
  }

  /** Logs every event of the ring, counting its ejections and rediscoveries. */
  follow<T>(ring: RingDict<T>): void {
    ring.events$.subscribe((event) => {
      this.log(`${event.type}${event.node ? ` ${event.node}` : ''}`);
      if (event.type === 'ejected') this.flaps.ejected++;
      if (event.type === 'rediscovered') this.flaps.rediscovered++;
    });
  }

  /**
   * Event-loop stalls explain slow calls (and, past commandTimeout, ejections): logs them and
   * keeps the worst. Answers the function that stops watching.
   */
  watchStalls(): () => void {
    let tick = performance.now();
    const stallWatch = setInterval(() => {
      const now = performance.now();
      const stall = now - tick - STALL_PERIOD_MS;
      tick = now;
      this.worstStall = Math.max(this.worstStall, stall);
      if (stall > COMMAND_TIMEOUT / 2) this.log(`event loop stalled ${stall.toFixed(0)} ms`);
    }, STALL_PERIOD_MS);
    return () => clearInterval(stallWatch);
  }

  /** What happened from a second before a call until it returned, relative to its start. */
  around(call: { at: number; ms: number }): string {
    return this.entries
      .filter((e) => e.at >= call.at - 1_000 && e.at <= call.at + call.ms)
      .map((e) => `${e.what} at ${(e.at - call.at).toFixed(0)} ms`)
      .join(', ');
  }
}

/**
 * Flaps one server after another, alternately SIGKILL + restart and SIGSTOP + SIGCONT, every
 * --flap-every ms for --outage ms. stop() resolves once the flap under way is over.
 */
export function flapServers(
  servers: readonly RedisServer[],
  options: Options,
  timeline: Timeline,
): { stop(): Promise<void> } {
  let running = true;
  const flapper = (async () => {
    for (let n = 0; running; n++) {
      await sleep(options.flapEvery - options.outage);
      if (!running) break;
      const server = servers[n % servers.length];
      const name = NAMES[n % servers.length];
      if (n % 2 === 0) {
        timeline.flaps.kill++;
        timeline.log(`SIGKILL ${name}`);
        await server.kill();
        await sleep(options.outage);
        await server.restart();
        timeline.log(`restarted ${name}`);
      } else {
        timeline.flaps.hang++;
        timeline.log(`SIGSTOP ${name}`);
        server.hang();
        await sleep(options.outage);
        server.resume();
        timeline.log(`SIGCONT ${name}`);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await flapper;
    },
  };
}
