/*
 * The programs the packaging test runs in a consumer project that installed the tarball:
 * plain ESM JavaScript, as a user without a TypeScript build would write them. Each exits
 * non-zero (with the reason on stderr) if a check fails, and prints `OK <json>` when done.
 */

/**
 * A Nest app over real redis-servers (`node app.mjs <redis-url…>`) importing
 * `nestjs-ring-redis` and `nestjs-ring-redis/health`, with an OpenTelemetry SDK registered
 * first, as an app's instrumentation does. Without a TypeScript build, decorators are applied
 * by hand. It exits by itself once the app is closed.
 */
export const NEST_APP = `
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { Controller, Get, Inject, Injectable, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import {
  getRingDictToken,
  InjectRingDict,
  RingCached,
  RingDict,
  RingRedisModule,
  RingRedisService,
} from 'nestjs-ring-redis';
import { RingRedisHealthIndicator } from 'nestjs-ring-redis/health';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';

// The SDK first: the package's meter records into it from the packed build.
class Reader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const reader = new Reader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

function decorateMethod(cls, name, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name);
  Object.defineProperty(cls.prototype, name, Reflect.decorate(decorators, cls.prototype, name, descriptor));
}

const urls = process.argv.slice(2);
const nodes = Object.fromEntries(urls.map((url, i) => ['node' + i, { capacity: 1, connection: url }]));

// A service with the dict injected by token and a memoised method.
class Greeter {
  constructor(dict) {
    this.dict = dict;
    this.calls = 0;
  }
  async greet(name) {
    this.calls++;
    return 'hello ' + name;
  }
}
Inject(getRingDictToken('default'))(Greeter, undefined, 0);
Injectable()(Greeter);
// As TypeScript emits it: the return type metadata tells @RingCached the method is async.
decorateMethod(Greeter, 'greet', RingCached({ ttl: 30 }), Reflect.metadata('design:returntype', Promise));

// A controller with the dict injected by @InjectRingDict().
class KvController {
  constructor(dict) {
    this.dict = dict;
  }
  async get(key) {
    return { key, value: (await this.dict.get(key)) ?? null };
  }
}
InjectRingDict()(KvController, undefined, 0);
Param('key')(KvController.prototype, 'get', 0);
decorateMethod(KvController, 'get', Get(':key'));
Controller('kv')(KvController);

class AppModule {}
Module({
  imports: [
    TerminusModule,
    RingRedisModule.forRoot({ groups: { default: nodes }, defaults: { prefix: 'consumer:' } }),
  ],
  controllers: [KvController],
  providers: [
    Greeter,
    RingRedisHealthIndicator,
    { provide: 'DICT_BY_FACTORY', useFactory: (dict) => dict, inject: [getRingDictToken('default')] },
  ],
})(AppModule);

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(0, '127.0.0.1');
const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');

const dict = app.get(getRingDictToken('default'));
assert.ok(dict instanceof RingDict, 'the injected dict is a RingDict');
assert.equal(app.get('DICT_BY_FACTORY'), dict);
assert.deepEqual(app.get(RingRedisService).names(), ['default']);

await dict.set('answer', { n: 42 });
assert.deepEqual(await dict.get('answer'), { n: 42 });
assert.equal(dict.getEntry('answer'), 'consumer:answer');

const greeter = app.get(Greeter);
assert.equal(greeter.dict, dict);
assert.equal(await greeter.greet('ada'), 'hello ada');
assert.equal(await greeter.greet('ada'), 'hello ada');
assert.equal(greeter.calls, 1, '@RingCached served the second call from the ring');

const response = await fetch(url + '/kv/answer');
assert.equal(response.status, 200);
assert.deepEqual(await response.json(), { key: 'answer', value: { n: 42 } });

const health = app.get(RingRedisHealthIndicator).isHealthy();
assert.equal(health['ring-redis'].status, 'up');
assert.equal(health['ring-redis'].groups.default.alive, urls.length);
assert.equal(health['ring-redis'].groups.default.total, urls.length);

const node = dict.aliveHash.locate(dict.getEntry('answer'));
const { resourceMetrics } = await reader.collect();
const scope = resourceMetrics.scopeMetrics.find((s) => s.scope.name === 'nestjs-ring-redis');
assert.ok(scope, 'the package recorded through the SDK');
assert.match(scope.scope.version, /^\\d+\\.\\d+\\.\\d+/);
const points = (name) => scope.metrics.find((m) => m.descriptor.name === name)?.dataPoints ?? [];
const count = (name, match) =>
  points(name)
    .filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v))
    .reduce((sum, p) => sum + p.value, 0);
assert.equal(count('ring_redis.operations', { node, operation: 'set', outcome: 'ok' }), 1);
// dict.get, then the controller's get.
assert.equal(count('ring_redis.operations', { node, operation: 'get', outcome: 'hit' }), 2);
assert.equal(count('ring_redis.cached.calls', { method: 'Greeter.greet', outcome: 'miss' }), 1);
assert.equal(count('ring_redis.cached.calls', { method: 'Greeter.greet', outcome: 'hit' }), 1);
await app.close();
console.log('OK ' + JSON.stringify({ node }));
`;

/**
 * A module-loading hook (registered by CORE_APP) that appends every URL the ESM loader
 * resolves to the file named in its `data.log`: a package loaded through `import` shows up
 * there even when nothing else would reveal it.
 */
export const RECORD_RESOLVE_HOOK = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) {
  log = data.log;
}
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`;

/**
 * The framework-free engine as a script uses it: `node core-app.mjs <entry> [redis-url…]`.
 * It imports `<entry>` while recording every module loaded (ESM through the hook above, CJS
 * through `require.cache`), places keys with a HashRing, keeps the stack of a RingConfigError
 * (run with --enable-source-maps it names the TypeScript sources), and with redis URLs stores
 * and reads a value through a RingDict. It prints the packages that were loaded.
 */
export const CORE_APP = `
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { fileURLToPath } from 'node:url';

const [entry, ...urls] = process.argv.slice(2);
const log = fileURLToPath(new URL('./resolved-' + process.pid + '.log', import.meta.url));
writeFileSync(log, '');
register('./record-resolve.mjs', import.meta.url, { data: { log } });

const lib = await import(entry);

const esm = readFileSync(log, 'utf8').split('\\n').filter((u) => u.startsWith('file:'));
const loaded = [...esm.map((u) => fileURLToPath(u)), ...Object.keys(createRequire(import.meta.url).cache)];
const packageOf = (path) => {
  const at = path.lastIndexOf('/node_modules/');
  if (at === -1) return undefined;
  const [scope, name] = path.slice(at + '/node_modules/'.length).split('/');
  return scope.startsWith('@') ? scope + '/' + name : scope;
};
const packages = [...new Set(loaded.map(packageOf).filter(Boolean))].sort();

const ring = new lib.HashRing({ a: 1, b: 1, c: 2 });
const owner = ring.locate('some:entry');
assert.ok(['a', 'b', 'c'].includes(owner), 'a node of the ring owns the entry');
assert.equal(new lib.HashRing({ c: 2, b: 1, a: 1 }).locate('some:entry'), owner, 'placement is stable');
assert.deepEqual([...ring.nodes].sort(), ['a', 'b', 'c']);

let stack = '';
try {
  new lib.HashRing({ a: -1 });
} catch (error) {
  assert.ok(error instanceof lib.RingConfigError, 'a bad capacity is a RingConfigError');
  assert.ok(error instanceof lib.RingError);
  stack = error.stack;
}
assert.ok(stack, 'a capacity of -1 was refused');

let node;
if (urls.length > 0) {
  const nodes = Object.fromEntries(urls.map((url, i) => ['node' + i, { capacity: 1, connection: url }]));
  const dict = new lib.RingDict({ nodes, prefix: 'core:' });
  await dict.set('answer', { n: 42 });
  assert.deepEqual(await dict.get('answer'), { n: 42 });
  assert.equal(await dict.has('missing'), false);
  node = dict.aliveHash.locate(dict.getEntry('answer'));
  await dict.close();
}
console.log('OK ' + JSON.stringify({ packages, exports: Object.keys(lib), owner, node, stack }));
`;
