/**
 * The soak's load: workers getting, setting and deleting keys of their own, each checking
 * every value it reads against what it knows it wrote.
 */
import { performance } from 'node:perf_hooks';
import type { RingDict } from '../lib/index.js';
import { sleep } from './measure.js';
import { SLOW_CALL_MS } from './soak-config.js';

export interface Stored {
  w: number;
  k: number;
  v: number;
}

export class Load {
  ops = 0;
  errors = 0;
  errorSamples: string[] = [];
  stale = 0;
  neverWritten = 0;
  misses = 0;
  slowestMs = 0;
  /** Calls slower than the goal: when (performance.now()), how long, which operation. */
  slowCalls: { at: number; ms: number; op: string }[] = [];
  private readonly acked: Int32Array;
  private readonly deleted: Uint8Array;
  private readonly next: Int32Array;
  private readonly keysPerWorker: number;

  constructor(
    private readonly dict: RingDict<Stored>,
    private readonly workers: number,
    keys: number,
  ) {
    this.keysPerWorker = Math.max(1, Math.floor(keys / workers));
    const total = this.keysPerWorker * workers;
    this.acked = new Int32Array(total);
    this.deleted = new Uint8Array(total);
    this.next = new Int32Array(total).fill(1);
  }

  /** Runs the workers until `until()` says stop; resolves when their last calls are done. */
  async run(until: () => boolean): Promise<void> {
    await Promise.all(Array.from({ length: this.workers }, (_, w) => this.worker(w, until)));
  }

  private check(w: number, k: number, slot: number, value: Stored | undefined): void {
    if (value === undefined) {
      this.misses++;
      return;
    }
    if (value.w !== w || value.k !== k || !(value.v > 0) || value.v >= this.next[slot]) {
      this.neverWritten++;
    } else if (value.v < this.acked[slot] || (value.v === this.acked[slot] && this.deleted[slot])) {
      this.stale++;
    }
  }

  private async worker(w: number, until: () => boolean): Promise<void> {
    while (!until()) {
      const k = Math.floor(Math.random() * this.keysPerWorker);
      const slot = w * this.keysPerWorker + k;
      const key = `w${w}:k${k}`;
      const dice = Math.random();
      const start = performance.now();
      try {
        if (dice < 0.5) {
          this.check(w, k, slot, await this.dict.get(key));
        } else if (dice < 0.95) {
          const v = this.next[slot]++;
          await this.dict.set(key, { w, k, v });
          this.acked[slot] = v;
          this.deleted[slot] = 0;
        } else {
          const v = this.next[slot]++;
          await this.dict.delete(key);
          this.acked[slot] = v;
          this.deleted[slot] = 1;
        }
      } catch (error) {
        // A set that threw may have landed: accept any version from here on.
        this.acked[slot] = 0;
        this.deleted[slot] = 0;
        this.errors++;
        if (this.errorSamples.length < 5) this.errorSamples.push(String(error));
        await sleep(5);
      } finally {
        this.ops++;
        const ms = performance.now() - start;
        this.slowestMs = Math.max(this.slowestMs, ms);
        if (ms > SLOW_CALL_MS && this.slowCalls.length < 100) {
          this.slowCalls.push({
            at: start,
            ms,
            op: dice < 0.5 ? 'get' : dice < 0.95 ? 'set' : 'delete',
          });
        }
      }
    }
  }
}
