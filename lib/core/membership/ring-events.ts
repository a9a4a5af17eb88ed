import type { HandoffReport } from '../handoff/handoff-report.js';
import type { RingConnectionError } from '../node/connection-errors.js';
import type { NodeHealth } from '../node/node-health.js';

/**
 * `ejected` / `rediscovered`: a node left or rejoined the alive ring; `unavailable`: no node is
 * alive; `added` / `removed`: `setNodes()` made a node a member or took it out.
 */
export type RingEventType = 'ejected' | 'rediscovered' | 'unavailable' | 'added' | 'removed';

/** What `events$` emits. Nodes are named by their configured name. */
export interface RingEvent {
  type: RingEventType;
  node?: string;
  at: Date;
  error?: Error;
  /** On `rediscovered`: what was handed back to the node before it rejoined. */
  handoff?: HandoffReport;
  /**
   * Sentinel nodes only: on `ejected`, the master that failed; on `rediscovered`, the master
   * the node rejoined on (`host:port`, never a credential).
   */
  master?: string;
  /**
   * Sentinel nodes only, on `rediscovered`: the node came back on another master than the one
   * it was ejected from, i.e. Sentinel failed over while it was away.
   */
  failover?: { from: string; to: string };
}

/** A node left the alive ring; `health` has just recorded the ejection. */
export function ejectedEvent(health: NodeHealth, error: RingConnectionError): RingEvent {
  const event: RingEvent = {
    type: 'ejected',
    node: health.name,
    at: health.ejectedAt!,
    error,
  };
  // Sentinel nodes: say which master failed.
  if (health.master !== undefined) event.master = health.master;
  return event;
}

/** A node rejoined the alive ring, after `handoff` brought it up to date (if it ran). */
export function rediscoveredEvent(health: NodeHealth, handoff?: HandoffReport): RingEvent {
  const event: RingEvent = { type: 'rediscovered', node: health.name, at: new Date() };
  if (handoff) event.handoff = handoff;
  // Sentinel nodes: which master it rejoined on, and whether that is a new one (a failover).
  if (health.master !== undefined) event.master = health.master;
  const failover = health.failoverSinceEjection();
  if (failover) event.failover = failover;
  return event;
}

/** The last alive node left the ring. */
export function unavailableEvent(): RingEvent {
  return { type: 'unavailable', at: new Date() };
}

/** `setNodes()` made `node` a member (`added`) or took it out of the rings (`removed`). */
export function memberEvent(type: 'added' | 'removed', node: string): RingEvent {
  return { type, node, at: new Date() };
}
