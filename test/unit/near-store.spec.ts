import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, NearStore } from '../../lib/core/near/near-store.js';

/**
 * The near cache's memory on its own: which replies it keeps (never one that raced an
 * invalidation or a drop), what it serves (never an entry of an older channel epoch or past
 * its TTL), and its bounds.
 */

const forever = Number.POSITIVE_INFINITY;

function source(epoch = 0) {
  return { epoch };
}

/** Stores a reply of `key` (the key itself by default) as a read begun now would. */
function putter(store: NearStore, node: { epoch: number }) {
  return (key: string, raw = key, expiresAt = forever) => {
    store.put(key, raw, node, node.epoch, store.begin(), expiresAt);
    store.end();
  };
}

describe('NearStore', () => {
  it('keeps a reply and serves it', () => {
    const store = new NearStore(10, 1 << 20);
    const node = source();
    const sent = store.begin();
    store.put('a', 'raw', node, 0, sent, forever);
    store.end();
    expect(store.get('a', performance.now())).toBe('raw');
    expect(store.byteSize).toBe(1 + 3 + ENTRY_OVERHEAD_BYTES);
  });

  it('refuses a reply whose key was invalidated while it was in flight', () => {
    const store = new NearStore(10, 1 << 20);
    const node = source();
    const sent = store.begin();
    const other = store.begin();
    store.invalidate('a');
    store.put('a', 'old', node, 0, sent, forever);
    // Another key's reply of the same moment is kept.
    store.put('b', 'fine', node, 0, other, forever);
    store.end();
    store.end();
    expect(store.get('a', performance.now())).toBeUndefined();
    expect(store.get('b', performance.now())).toBe('fine');
    // A read begun after the invalidation is kept.
    const later = store.begin();
    store.put('a', 'new', node, 0, later, forever);
    store.end();
    expect(store.get('a', performance.now())).toBe('new');
  });

  // A read is always in flight under a steady load: what they must not store stays bounded.
  it('remembers at most maxEntries invalidations for reads in flight, refusing their replies past that', () => {
    const store = new NearStore(100, 1 << 20);
    const node = source();
    const recent = (store as unknown as { recent: Map<string, number> }).recent;
    let sent = store.begin();
    let peak = 0;
    for (let i = 0; i < 10_000; i++) {
      // Reads overlap: the next begins before the last ends, so none is ever the only one.
      const next = store.begin();
      store.invalidate(`w${i}`);
      store.end();
      peak = Math.max(peak, recent.size);
      if (i === 5_000) {
        store.put('w5000', 'old', node, 0, sent, forever);
        store.put('w4999', 'old', node, 0, sent, forever);
      }
      sent = next;
    }
    store.end();
    expect(peak).toBeLessThanOrEqual(100);
    expect(store.get('w5000', performance.now())).toBeUndefined();
    expect(store.get('w4999', performance.now())).toBeUndefined();
    // A read begun after the invalidations is kept.
    store.put('w5000', 'new', node, 0, store.begin(), forever);
    store.end();
    expect(store.get('w5000', performance.now())).toBe('new');
  });

  it('refuses replies of reads begun before dropAll, serves nothing held before it', () => {
    const store = new NearStore(10, 1 << 20);
    const node = source();
    store.put('a', 'x', node, 0, store.begin(), forever);
    store.end();
    const sent = store.begin();
    store.dropAll();
    store.put('b', 'y', node, 0, sent, forever);
    store.end();
    expect(store.get('a', performance.now())).toBeUndefined();
    expect(store.get('b', performance.now())).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('serves no entry of an older epoch of its node, nor past its expiry', () => {
    const store = new NearStore(10, 1 << 20);
    const node = source(3);
    store.put('a', 'x', node, 3, store.begin(), forever);
    store.put('b', 'y', node, 3, store.begin(), performance.now() - 1);
    store.end();
    store.end();
    expect(store.get('b', performance.now())).toBeUndefined();
    expect(store.get('a', performance.now())).toBe('x');
    node.epoch++;
    expect(store.get('a', performance.now())).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('stays within maxEntries, giving entries read since the last sweep a second chance', () => {
    const store = new NearStore(3, 1 << 20);
    const put = putter(store, source());
    put('a');
    put('b');
    put('c');
    store.get('a', performance.now());
    put('d');
    expect(store.size).toBe(3);
    expect(store.get('b', performance.now())).toBeUndefined();
    expect(store.get('a', performance.now())).toBe('a');
    expect(store.get('d', performance.now())).toBe('d');
  });

  it('stays within maxBytes, and never holds a value bigger than it', () => {
    const entry = 1 + 10 + ENTRY_OVERHEAD_BYTES;
    const store = new NearStore(100, 2 * entry);
    const node = source();
    for (const key of ['a', 'b', 'c']) {
      store.put(key, 'x'.repeat(10), node, 0, store.begin(), forever);
      store.end();
      expect(store.byteSize).toBeLessThanOrEqual(2 * entry);
    }
    expect(store.size).toBe(2);
    store.put('big', 'x'.repeat(3 * entry), node, 0, store.begin(), forever);
    store.end();
    expect(store.get('big', performance.now())).toBeUndefined();
    expect(store.size).toBe(2);
  });

  it('keeps a note with the reply it was made from, counted against maxBytes, never with a later one', () => {
    const entry = 1 + 10 + ENTRY_OVERHEAD_BYTES;
    const store = new NearStore(100, 3 * entry);
    const put = putter(store, source());
    put('a', 'x'.repeat(10));
    const held = store.held('a', performance.now())!;
    expect(held.note).toBeUndefined();
    store.note('a', held, 'parsed', 100);
    expect(store.held('a', performance.now())!.note).toBe('parsed');
    expect(store.byteSize).toBe(entry + 100);
    // A later reply starts without one; a note for the reply it replaced is refused.
    put('a', 'y'.repeat(10));
    store.note('a', held, 'late', 100);
    expect(store.held('a', performance.now())!.note).toBeUndefined();
    expect(store.byteSize).toBe(entry);
    // A note that takes the store past maxBytes evicts: the oldest not read since ('a' was).
    put('b', 'x'.repeat(10));
    put('c', 'x'.repeat(10));
    store.note('c', store.held('c', performance.now())!, 'big', 100);
    expect(store.byteSize).toBeLessThanOrEqual(3 * entry);
    expect(store.get('b', performance.now())).toBeUndefined();
    expect(store.held('c', performance.now())!.note).toBe('big');
  });

  it('keeps no note that would make its entry more than half of maxBytes', () => {
    const store = new NearStore(100, 1000);
    const node = source();
    store.put('big', 'x'.repeat(200), node, 0, store.begin(), forever);
    store.put('small', 'y', node, 0, store.begin(), forever);
    store.end();
    store.end();
    const bytes = store.byteSize;
    // 'big' takes 203 + 200 B: 100 more would be over half; evicting to make room would drop it.
    store.note('big', store.held('big', performance.now())!, 'parsed', 100);
    expect(store.held('big', performance.now())!.note).toBeUndefined();
    expect(store.byteSize).toBe(bytes);
    store.note('small', store.held('small', performance.now())!, 'parsed', 100);
    expect(store.held('small', performance.now())!.note).toBe('parsed');
  });

  it('holds a reply kept by a reader until it is invalidated, replaced, evicted, dropped or stale', () => {
    const node = source();
    const now = () => performance.now();
    const storeWith = (maxEntries = 10) => {
      const store = new NearStore(maxEntries, 1 << 20);
      const put = putter(store, node);
      // Each reply another string: a later one is another reply.
      const held = (key: string, expiresAt = forever) => {
        put(key, `${key}${now()}`, expiresAt);
        return store.held(key, now());
      };
      return { store, put: held };
    };
    let { store, put } = storeWith();
    const invalidated = put('a')!;
    expect(store.holds(invalidated, now())).toBe(true);
    store.invalidate('a');
    expect(store.holds(invalidated, now())).toBe(false);

    const replaced = put('a')!;
    const replacing = put('a')!;
    expect(store.holds(replaced, now())).toBe(false);
    expect(store.holds(replacing, now())).toBe(true);

    store.dropAll();
    expect(store.holds(replacing, now())).toBe(false);

    const expiring = put('d', now() + 1_000)!;
    expect(store.holds(expiring, now() + 2_000)).toBe(false);
    const older = put('e')!;
    node.epoch++;
    expect(store.holds(older, now())).toBe(false);

    // maxEntries 1: a sweep spares 'b' (read since the last one), evicting 'c'; the next
    // evicts 'b'.
    ({ store, put } = storeWith(1));
    const evicted = put('b')!;
    put('c');
    expect(store.get('c', now())).toBeUndefined();
    put('d');
    expect(store.holds(evicted, now())).toBe(false);
  });

  it('marks a reply it still holds as read, as a lookup does (the sweep gives it a second chance)', () => {
    const store = new NearStore(2, 1 << 20);
    const put = putter(store, source());
    put('a');
    put('b');
    const a = store.held('a', performance.now())!;
    // The sweep spares 'a' (clearing its flag) and evicts 'b': 'c', then 'a', in that order.
    put('c');
    store.get('c', performance.now());
    // 'c' and 'a' read since: the next sweep spares both and evicts 'd'.
    expect(store.holds(a, performance.now())).toBe(true);
    put('d');
    expect(store.holds(a, performance.now())).toBe(true);
    expect(store.get('d', performance.now())).toBeUndefined();
  });
});
