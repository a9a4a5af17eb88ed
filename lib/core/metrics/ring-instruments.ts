import type { Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';
import { ringMeter } from './otel-api.js';

/** The package's instruments, as DESIGN's table names them. */
export interface RingInstruments {
  /** `group`, `node`, `operation`, `outcome` (`hit` | `miss` | `ok` | `error`). */
  operations: Counter;
  /** Seconds; `group`, `node`, `operation`. */
  duration: Histogram;
  /** `group`. */
  alive: ObservableGauge;
  /** `group`, `node`, `type` (`ejected` | `rediscovered` | `added` | `removed`). */
  transitions: Counter;
  /** `group`, `method` (`Class.method`), `outcome` (`hit` | `miss` | `stale` | `bypass` | `error`). */
  cachedCalls: Counter;
}

/**
 * Bucket bounds of the duration histogram, in seconds. The SDK's default bounds (0 to 10 000)
 * are made for milliseconds: in seconds every command would fall in the first bucket. A
 * command to a local node answers in some 50–200 µs; `commandTimeout` (500 ms by default)
 * bounds the slowest.
 */
const DURATION_BOUNDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** Instruments per meter: every dict of a process shares them (one SDK, one set). */
const made = new WeakMap<Meter, RingInstruments>();

/** The instruments of the registered SDK, or undefined when nothing would be recorded. */
export function ringInstruments(): RingInstruments | undefined {
  const meter = ringMeter();
  if (meter === undefined) return undefined;
  let instruments = made.get(meter);
  if (instruments === undefined) made.set(meter, (instruments = createInstruments(meter)));
  return instruments;
}

function createInstruments(meter: Meter): RingInstruments {
  return {
    operations: meter.createCounter('ring_redis.operations', {
      description: 'Commands of the ring sent to a node, by outcome (a batch counts its keys)',
    }),
    duration: meter.createHistogram('ring_redis.operation.duration', {
      description: 'Round trip of a command of the ring on a node',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BOUNDS },
    }),
    alive: meter.createObservableGauge('ring_redis.nodes.alive', {
      description: 'Nodes in the alive ring',
    }),
    transitions: meter.createCounter('ring_redis.node.transitions', {
      description: 'Nodes ejected, rediscovered, added and removed',
    }),
    cachedCalls: meter.createCounter('ring_redis.cached.calls', {
      description: 'Calls of @RingCached methods and wrap(), by outcome',
    }),
  };
}
