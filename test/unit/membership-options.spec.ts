import { describe, expect, it } from 'vitest';
import { RingConfigError, RingDict, type RingDictOptions } from '../../lib/index.js';

/** The options of runtime membership are checked strictly, each error naming the option. */

const nodes = { a: 'redis://127.0.0.1:1', b: 'redis://127.0.0.1:2' };

function refused(options: Partial<RingDictOptions>, message: RegExp): void {
  expect(() => new RingDict({ nodes, lazyConnect: true, ...options })).toThrow(RingConfigError);
  expect(() => new RingDict({ nodes, lazyConnect: true, ...options })).toThrow(message);
}

describe('warmUpWindow', () => {
  it.each([-1, 1.5, '60000', Number.NaN, 2 ** 31])('refuses %s', (warmUpWindow) => {
    refused({ warmUpWindow: warmUpWindow as number }, /warmUpWindow/);
  });
});

describe('migration', () => {
  const later = Date.now() + 60_000;
  it('refuses a non-object, an unknown field, a bad until and bad from nodes', () => {
    refused({ migration: 'soon' as never }, /migration: expected \{ from, until \}/);
    refused({ migration: { from: nodes, until: later, to: 1 } as never }, /unknown field "to"/);
    refused({ migration: { from: nodes, until: 'tomorrow' as never } }, /migration\.until/);
    refused({ migration: { from: {}, until: later } }, /migration\.from: .*no nodes/);
    refused(
      { migration: { from: { a: nodes.a, b: nodes.a }, until: later } },
      /migration\.from: .*same server/,
    );
    refused(
      { name: 'g', migration: { from: { a: { capacity: 0, connection: nodes.a } }, until: later } },
      /group "g".*migration\.from/,
    );
  });

  it('a migration over already (until in the past) is accepted and changes nothing', async () => {
    const dict = new RingDict({
      nodes,
      lazyConnect: true,
      migration: { from: { a: nodes.a }, until: 1 },
    });
    expect(dict.totalHash.nodes).toEqual(['a', 'b']);
    await dict.close();
  });
});
