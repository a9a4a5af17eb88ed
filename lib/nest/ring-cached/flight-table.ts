/** The versions a tagged run records for the call's tags, once settled (undefined: the ring failed). */
export type RunIds = Promise<(string | null)[] | undefined>;

/**
 * One app's runs in flight, by flight key (see flightKeyOf): a miss joins the run of its key
 * instead of starting another (single flight). A tagged run is kept with the versions it
 * records, which decide who may join it: a run begun before an invalidation is not joined by
 * a call that came after it.
 */
export class FlightTable {
  private readonly runs = new Map<string, Promise<unknown>>();
  /** A tagged run → the versions it records. */
  private readonly ids = new WeakMap<Promise<unknown>, RunIds>();

  /** The run of `flight`, if one is under way. */
  get(flight: string): Promise<unknown> | undefined {
    return this.runs.get(flight);
  }

  /**
   * Makes `running` the run that callers of `flight` join until it settles; `ids`, for a
   * tagged run, the versions it records. Answers the run as callers see it.
   */
  fly(flight: string, running: Promise<unknown>, ids?: RunIds): Promise<unknown> {
    const run = running.finally(() => {
      if (this.runs.get(flight) === run) this.runs.delete(flight);
    });
    this.runs.set(flight, run);
    if (ids !== undefined) this.ids.set(run, ids);
    return run;
  }

  /** The versions `run` records: undefined for an untagged run. */
  idsOf(run: Promise<unknown>): RunIds | undefined {
    return this.ids.get(run);
  }

  /**
   * True when a call without tags may join `run`, a run of its key: one without tags too. A
   * tagged one may have begun before an invalidation that the call came after, which it cannot
   * tell (it reads no versions): joined, it answered the value the invalidation removed.
   */
  joinableUntagged(run: Promise<unknown>): boolean {
    return !this.ids.has(run);
  }
}
