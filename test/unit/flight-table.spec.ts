import { describe, expect, it } from 'vitest';
import { FlightTable } from '../../lib/nest/ring-cached/flight-table.js';

/** A promise and its resolve, to settle a run when the test says. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

describe('FlightTable', () => {
  it('keeps a run under its key until it settles, fulfilled or rejected', async () => {
    const flights = new FlightTable();
    const ok = deferred<string>();
    const run = flights.fly('g\u0000a', ok.promise);
    expect(flights.get('g\u0000a')).toBe(run);
    ok.resolve('v');
    expect(await run).toBe('v');
    expect(flights.get('g\u0000a')).toBeUndefined();

    const failed = flights.fly('g\u0000a', Promise.reject(new Error('down')));
    await expect(failed).rejects.toThrow('down');
    expect(flights.get('g\u0000a')).toBeUndefined();
  });

  it('a run that settles leaves a later run of its key in place', async () => {
    const flights = new FlightTable();
    const first = deferred<string>();
    const earlier = flights.fly('k', first.promise);
    const later = flights.fly('k', new Promise<string>(() => undefined));
    first.resolve('old');
    await earlier;
    expect(flights.get('k')).toBe(later);
  });

  it('a tagged run carries its versions; an untagged call joins only untagged runs', async () => {
    const flights = new FlightTable();
    const ids = Promise.resolve(['id-1']);
    const tagged = flights.fly('t', new Promise(() => undefined), ids);
    const plain = flights.fly('p', new Promise(() => undefined));
    expect(flights.idsOf(tagged)).toBe(ids);
    expect(flights.idsOf(plain)).toBeUndefined();
    expect(flights.joinableUntagged(tagged)).toBe(false);
    expect(flights.joinableUntagged(plain)).toBe(true);
  });
});
