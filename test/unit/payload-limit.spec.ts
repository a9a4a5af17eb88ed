import { describe, expect, it } from 'vitest';
import { RingArgumentError } from '../../lib/index.js';
import { PayloadLimit } from '../../lib/core/payload-limit.js';

/** The check made before a value is sent, against the member nodes' limits, without a server. */
describe('PayloadLimit', () => {
  const MiB = 1024 * 1024;
  const connected = () => Promise.resolve();

  it('refuses a value longer than the smallest limit of the nodes, naming it and the entry', () => {
    const limit = new PayloadLimit(
      () => [{ maxBulkBytes: 4 * MiB }, { maxBulkBytes: 2 * MiB }],
      connected,
    );
    expect(() => limit.check(Buffer.alloc(2 * MiB), 'set', 'p:k')).not.toThrow();
    const over = () => limit.check(Buffer.alloc(2 * MiB + 1), 'set', 'p:k');
    expect(over).toThrow(RingArgumentError);
    expect(over).toThrow(
      'set: the value for "p:k" takes 2097153 bytes, more than the 2097152 a node\'s server ' +
        'accepts (its proto-max-bulk-len). Nothing was written.',
    );
  });

  it('counts a string in UTF-8 bytes', () => {
    const limit = new PayloadLimit(() => [{ maxBulkBytes: MiB }], connected);
    expect(() => limit.check('é'.repeat(MiB / 2), 'setRaw', 'k')).not.toThrow();
    expect(() => limit.check('é'.repeat(MiB / 2 + 1), 'setRaw', 'k')).toThrow(
      /takes 1048578 bytes/,
    );
    expect(() => limit.check('€'.repeat(MiB / 3 + 1), 'setRaw', 'k')).toThrow(
      /takes 1048578 bytes/,
    );
  });

  // Before a node's first handshake its limit is not known: a value queued then was sent past
  // a 1 MiB limit, and the server closed the connection.
  it('waits for the nodes to connect when a limit is not known yet, then checks', async () => {
    const node: { maxBulkBytes: number | undefined } = { maxBulkBytes: undefined };
    let connects = 0;
    const limit = new PayloadLimit(
      () => [node],
      async () => {
        connects++;
        node.maxBulkBytes = MiB;
      },
    );
    expect(limit.fits(Buffer.alloc(MiB), 'set', 'k')).toBeUndefined();
    await expect(limit.fits(Buffer.alloc(MiB + 1), 'set', 'k')).rejects.toThrow(
      /takes 1048577 bytes, more than the 1048576/,
    );
    expect(connects).toBe(1);
    // Still unknown once the nodes connected (a node down): Redis' default, 512 MiB.
    const silent = new PayloadLimit(() => [{ maxBulkBytes: undefined }], connected);
    await expect(silent.fits(Buffer.alloc(2 * MiB), 'set', 'k')).resolves.toBeUndefined();
  });

  it('asks the nodes nothing for a value shorter than the smallest limit a server can have', () => {
    let asked = 0;
    const limit = new PayloadLimit(() => {
      asked++;
      return [{ maxBulkBytes: 1 }];
    }, connected);
    limit.check('€'.repeat(MiB / 3), 'set', 'k');
    limit.check(Buffer.alloc(MiB), 'set', 'k');
    expect(asked).toBe(0);
  });
});
