import { describe, expect, it } from 'vitest';
import { resolveNodes, validateNodes } from '../../lib/core/config/ring-config.js';
import * as core from '../../lib/core/index.js';
import {
  parseRingNodes,
  RingConfigError,
  RingDict,
  type RingNodesConfig,
} from '../../lib/index.js';

/** The message of the RingConfigError that `run` throws. */
function configError(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RingConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a RingConfigError');
}

describe('parseRingNodes', () => {
  it('reads name=url pairs, a capacity after the name, 1 without', () => {
    expect(
      parseRingNodes(
        ' n0=redis://10.0.0.10:6379, big:2=redis://10.0.0.12:6379/1 ,half:0.5=rediss://h:6380,',
      ),
    ).toEqual({
      n0: { capacity: 1, connection: 'redis://10.0.0.10:6379' },
      big: { capacity: 2, connection: 'redis://10.0.0.12:6379/1' },
      half: { capacity: 0.5, connection: 'rediss://h:6380' },
    });
  });

  it('takes the capacity after the last colon, so a host:port name keeps its colon', () => {
    expect(parseRingNodes('10.0.0.10:6379:1=redis://10.0.0.10:6379')).toEqual({
      '10.0.0.10:6379': { capacity: 1, connection: 'redis://10.0.0.10:6379' },
    });
  });

  it('keeps an "=" inside the URL (a password) and a percent-encoded comma', () => {
    expect(parseRingNodes('a=redis://:p%2Cw=x@10.0.0.1:6379')).toEqual({
      a: { capacity: 1, connection: 'redis://:p%2Cw=x@10.0.0.1:6379' },
    });
  });

  it('reads JSON: URL strings and { capacity?, connection } objects', () => {
    const json = JSON.stringify({
      a: 'redis://10.0.0.1:6379',
      b: { connection: { host: '10.0.0.2', port: 6379 } },
      c: { capacity: 3, connection: 'redis://10.0.0.3:6379' },
    });
    expect(parseRingNodes(json)).toEqual({
      a: { capacity: 1, connection: 'redis://10.0.0.1:6379' },
      b: { capacity: 1, connection: { host: '10.0.0.2', port: 6379 } },
      c: { capacity: 3, connection: 'redis://10.0.0.3:6379' },
    });
  });

  it('reads JSON whose nodes repeat field names and whose names hold quotes and commas', () => {
    const nodes = parseRingNodes(
      '{"a\\",b": {"capacity": 1, "connection": "redis://h:1"}, "c": {"capacity": 2, "connection": "redis://h:2"}}',
    );
    expect(Object.keys(nodes)).toEqual(['a",b', 'c']);
  });

  it('is exported by nestjs-ring-redis/core too', () => {
    expect(core.parseRingNodes).toBe(parseRingNodes);
  });

  it.each<[string, unknown, RegExp]>([
    ['an empty string', '  ', /^parseRingNodes: the string is empty; expected name=redis/],
    ['only commas', ' , ,', /^parseRingNodes: ", ," names no node$/],
    ['not a string', undefined, /^parseRingNodes: expected a string, got undefined$/],
    [
      'a URL without a name',
      'redis://10.0.0.1:6379',
      /^parseRingNodes: "redis:\/\/10\.0\.0\.1:6379" is not name=redis:\/\/host:port \(no "="\); give each node a name: n0=redis:\/\/…$/,
    ],
    ['no name before "="', '=redis://h:1', /^parseRingNodes: "=redis:\/\/h:1" has no node name/],
    ['no URL after "="', 'a=', /^parseRingNodes: node "a" has no URL after "="$/],
    [
      'a capacity that is not a number',
      'big:x=redis://h:1',
      /^parseRingNodes: node "big": the capacity after ":" must be a number > 0, got "x"$/,
    ],
    ['a capacity of 0', 'big:0=redis://h:1', /node "big": the capacity .* got "0"$/],
    ['a negative capacity', 'big:-1=redis://h:1', /node "big": the capacity .* got "-1"$/],
    ['an empty capacity', 'big:=redis://h:1', /node "big": the capacity .* got ""$/],
    [
      'a name given twice',
      'a=redis://h:1,a=redis://h:2',
      /^parseRingNodes: node "a" is named twice$/,
    ],
    ['"__proto__"', '__proto__=redis://h:1', /"__proto__" cannot name a node/],
    [
      'a URL that is not redis://',
      'a=http://h:1',
      /^parseRingNodes: nodes, node "a".connection: expected a redis:\/\/ or rediss:\/\/ URL, got http:\/\/…$/,
    ],
    [
      'two names for one server',
      'a=redis://h:1,b=redis://h:1',
      /node "b": connection h:1 is the same server as node "a"/,
    ],
    ['bad JSON', '{"a": ', /^parseRingNodes: not valid JSON \(/],
    ['a JSON array', '[1]', /not valid JSON|names no node|is not name=/],
    [
      'JSON with a node of the wrong type',
      '{"a": 7}',
      /^parseRingNodes: nodes, node "a": expected \{ capacity, connection \} or a redis:\/\/ URL, got 7$/,
    ],
    [
      'JSON with a bad capacity',
      '{"a": {"capacity": "2", "connection": "redis://h:1"}}',
      /node "a": capacity must be a finite number > 0, got "2"/,
    ],
    [
      'JSON with a misspelt field',
      '{"a": {"url": "redis://h:1"}}',
      /node "a": unknown field "url"/,
    ],
    ['JSON of no node', '{}', /^parseRingNodes: nodes: no nodes configured$/],
    // JSON.parse keeps the last of two: a node would be dropped without a word. Names inside a
    // node's object, escaped quotes and an escaped spelling of the same name are told apart.
    [
      'JSON naming a node twice',
      '{"a": "redis://h:1", "b": {"capacity": 1, "connection": "redis://h:2"}, "\\u0061": "redis://h:3"}',
      /^parseRingNodes: node "a" is named twice$/,
    ],
  ])('refuses %s, saying what is wrong', (_what, spec, message) => {
    expect(configError(() => parseRingNodes(spec as string))).toMatch(message);
  });
});

describe('a node given as a URL string, a capacity left out', () => {
  const nodes: RingNodesConfig = {
    a: 'redis://10.0.0.1:6379',
    b: { connection: 'redis://10.0.0.2:6379' },
    c: { capacity: 2, connection: { host: '10.0.0.3', port: 6379 } },
  };

  it('is valid, with capacity 1', () => {
    expect([...validateNodes(nodes, 'cache').keys()]).toEqual(['a', 'b', 'c']);
    expect(resolveNodes(nodes)).toEqual({
      a: { capacity: 1, connection: 'redis://10.0.0.1:6379' },
      b: { capacity: 1, connection: 'redis://10.0.0.2:6379' },
      c: { capacity: 2, connection: { host: '10.0.0.3', port: 6379 } },
    });
  });

  it('weighs as a node of capacity 1 in the ring, and leaves the options as given', async () => {
    const dict = new RingDict({ nodes, lazyConnect: true, heartbeatInterval: 0 });
    try {
      expect(dict.totalHash.nodes).toEqual(['a', 'b', 'c']);
      const explicit = new RingDict({
        nodes: {
          a: { capacity: 1, connection: 'redis://10.0.0.1:6379' },
          b: { capacity: 1, connection: 'redis://10.0.0.2:6379' },
          c: { capacity: 2, connection: { host: '10.0.0.3', port: 6379 } },
        },
        lazyConnect: true,
        heartbeatInterval: 0,
      });
      for (let i = 0; i < 200; i++) {
        expect(dict.totalHash.locate(`k${i}`)).toBe(explicit.totalHash.locate(`k${i}`));
      }
      await explicit.close();
    } finally {
      await dict.close();
    }
    expect(nodes.a).toBe('redis://10.0.0.1:6379');
    expect(nodes.b).toEqual({ connection: 'redis://10.0.0.2:6379' });
  });

  it.each<[string, unknown, RegExp]>([
    [
      'an empty URL string',
      { a: '' },
      /node "a": expected \{ capacity, connection \} or a redis:\/\/ URL, got ""/,
    ],
    ['a URL string of another scheme', { a: 'http://h:1' }, /expected a redis:\/\/ or rediss/],
    [
      'a URL string and an object on one server',
      { a: 'redis://h:1', b: { connection: 'redis://h:1' } },
      /node "b": connection h:1 is the same server as node "a"/,
    ],
    ['a capacity of null', { a: { capacity: null, connection: 'redis://h:1' } }, /got null/],
    [
      'a number',
      { a: 1 },
      /node "a": expected \{ capacity, connection \} or a redis:\/\/ URL, got 1/,
    ],
  ])('still refuses %s', (_what, bad, message) => {
    expect(configError(() => validateNodes(bad, 'cache'))).toMatch(message);
    expect(
      configError(() => new RingDict({ nodes: bad as RingNodesConfig, name: 'cache' })),
    ).toMatch(message);
  });
});
