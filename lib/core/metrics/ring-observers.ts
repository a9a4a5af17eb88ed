import type { RingMembership } from '../membership/ring-membership.js';
import { publishRingEvent } from './ring-diagnostics.js';
import { ringInstruments } from './ring-instruments.js';
import { RingMetrics } from './ring-metrics.js';

/**
 * Wires a dict's observers: its events published on the diagnostics channel, and its
 * metrics when an SDK records and `metered` (the `metrics` option) allows. Answers the
 * metrics for the router, undefined when nothing is recorded. Both stop when the
 * membership's events complete (the dict closed).
 */
export function observeRing(
  group: string,
  membership: RingMembership,
  metered: boolean,
): RingMetrics | undefined {
  const instruments = metered ? ringInstruments() : undefined;
  const metrics = instruments && new RingMetrics(instruments, group, membership);
  membership.events$.subscribe({
    next: (event) => {
      metrics?.event(event);
      publishRingEvent(group, event);
    },
    complete: () => metrics?.close(),
  });
  return metrics;
}
