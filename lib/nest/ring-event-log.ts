import type { LoggerService } from '@nestjs/common';
import type { RingEvent } from '../core/index.js';

/** A RingDict event tagged with its group. */
export interface RingGroupEvent extends RingEvent {
  group: string;
}

/**
 * The log lines of the groups' ring events (docs/events-and-logging.md, Logging): one line an
 * event, and the end of a group's outage (no node alive) once it is usable again.
 */
export class RingEventLog {
  /** Groups with no node alive, and since when: the next rediscovery makes them usable again. */
  private readonly outages = new Map<string, Date>();

  constructor(
    private readonly logger: LoggerService,
    /** Whether `node` of `group` is alive now. */
    private readonly isAlive: (group: string, node: string) => boolean,
  ) {}

  record(event: RingGroupEvent): void {
    const where = `group "${event.group}"`;
    if (event.type === 'ejected') {
      // Sentinel nodes name the master that failed.
      const master = event.master === undefined ? '' : ` (Sentinel master ${event.master})`;
      this.logger.warn(
        `${where}: node "${event.node}" ejected${master}: ${event.error?.message ?? 'unknown error'}`,
      );
    } else if (event.type === 'rediscovered') {
      this.rediscovered(event, where);
    } else if (event.type === 'added' || event.type === 'removed') {
      const what = event.type === 'added' ? 'added to the ring' : 'removed from the ring';
      this.logger.log(`${where}: node "${event.node}" ${what}`);
      // A node added alive ends an outage as a rediscovery does: left for the next rediscovery,
      // the line named a node back a while after the group had been serving again. The node
      // itself: one added unreachable beside it ends nothing.
      if (event.type === 'added' && this.isAlive(event.group, event.node!)) {
        this.usableAgain(event, `node "${event.node}" was added`);
      }
    } else if (event.type === 'unavailable') {
      this.outages.set(event.group, event.at);
      this.logger.error(`${where}: no node is alive`);
    }
  }

  private rediscovered(event: RingGroupEvent, where: string): void {
    const handoff = event.handoff;
    // Cleared without an overflow: by clear()s made while it was out, or whole, as an heir
    // that failed while it handed hints back. The line said "0 entries handed back" alone.
    const cleared = handoff?.cleared ? `; cleared ${handoff.cleared} entries` : '';
    const detail = !handoff
      ? ''
      : handoff.overflowed
        ? ` (${handoff.entries} entries handed back; more were written than remembered: ${handoff.policy === 'clear' ? `cleared ${handoff.cleared ?? 0} entries on it` : 'trusting TTLs'})`
        : ` (${handoff.entries} entries handed back${cleared})`;
    // Sentinel nodes: a new master means Sentinel failed over while the node was away.
    const failover = event.failover
      ? ` after a Sentinel failover (master ${event.failover.from} → ${event.failover.to})`
      : '';
    this.logger.log(`${where}: node "${event.node}" rediscovered${failover}${detail}`);
    this.usableAgain(event, `node "${event.node}" is back`);
  }

  /** The group's outage, if it had one, ended with `event`, for the reason `why`. */
  private usableAgain(event: RingGroupEvent, why: string): void {
    const since = this.outages.get(event.group);
    if (since === undefined) return;
    this.outages.delete(event.group);
    const seconds = ((event.at.getTime() - since.getTime()) / 1000).toFixed(1);
    this.logger.log(
      `group "${event.group}": usable again after ${seconds} s with no node alive (${why})`,
    );
  }
}
