import { channel } from 'node:diagnostics_channel';
import type { RingEvent } from '../membership/ring-events.js';

/**
 * The `node:diagnostics_channel` channel on which every ring event is published, as
 * `{ group, event }` (`event` is what `events$` emits). Publishing costs nothing while
 * nobody subscribes.
 */
export const RING_EVENT_CHANNEL = 'nestjs-ring-redis:event';

/** What a subscriber of RING_EVENT_CHANNEL receives. */
export interface RingEventMessage {
  /** The dict's name: the Nest group, `'default'` for a dict without one. */
  group: string;
  event: RingEvent;
}

const events = channel(RING_EVENT_CHANNEL);

/** Publishes `event` of `group` on RING_EVENT_CHANNEL, if anybody listens. */
export function publishRingEvent(group: string, event: RingEvent): void {
  if (!events.hasSubscribers) return;
  const message: RingEventMessage = { group, event };
  events.publish(message);
}
