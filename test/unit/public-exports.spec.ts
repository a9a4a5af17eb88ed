/**
 * The package's public names, written out: the exports of `nestjs-ring-redis`,
 * `nestjs-ring-redis/core`, `nestjs-ring-redis/health` and `nestjs-ring-redis/keyv`, values
 * and types. Moving code
 * between files must leave these lists as they are; a name added or removed on purpose is
 * added or removed here in the same change.
 *
 * Values are read from the loaded modules. Types leave no trace at run time, so they are read
 * from the `export` statements of the TypeScript sources, following re-exports; that reading
 * is checked against the loaded modules (it must find exactly their values), and it refuses
 * any `export` form it does not understand rather than skip it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

type ExportKind = 'value' | 'type';

const LIB = new URL('../../lib/', import.meta.url);

/** The names a TypeScript module exports, with their kind, following re-exports. */
function declaredExports(
  file: URL,
  seen = new Map<string, Map<string, ExportKind>>(),
): Map<string, ExportKind> {
  const cached = seen.get(file.href);
  if (cached) return cached;
  const names = new Map<string, ExportKind>();
  seen.set(file.href, names);
  const source = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const target = (spec: string) =>
    declaredExports(new URL(spec.replace(/\.js$/, '.ts'), file), seen);
  let understood = 0;
  for (const m of source.matchAll(/^export\s+\*\s+from\s+'([^']+)'/gm)) {
    understood++;
    for (const [name, kind] of target(m[1])) if (name !== 'default') names.set(name, kind);
  }
  for (const m of source.matchAll(/^export\s+(type\s+)?\{([^}]*)\}\s*from\s+'([^']+)'/gm)) {
    understood++;
    const from = target(m[3]);
    for (const item of m[2]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const [, typeOnly, local, alias] =
        /^(type\s+)?([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(item) ?? [];
      const kind = from.get(local);
      if (!local || !kind) throw new Error(`${file.pathname}: cannot read export "${item}"`);
      names.set(alias ?? local, m[1] || typeOnly ? 'type' : kind);
    }
  }
  // `export const { a: b, c } = …`: the bound names (b, c) are exported.
  for (const m of source.matchAll(/^export\s+(?:const|let|var)\s+\{([^}]*)\}\s*=/gm)) {
    understood++;
    for (const item of m[1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      names.set(item.split(':').at(-1)!.trim(), 'value');
    }
  }
  const declaration =
    /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(class|function\*?|const|let|var|enum|type|interface)\s+([\w$]+)/gm;
  for (const m of source.matchAll(declaration)) {
    understood++;
    names.set(m[2], m[1] === 'type' || m[1] === 'interface' ? 'type' : 'value');
  }
  const statements = source.match(/^export\b/gm)?.length ?? 0;
  if (statements !== understood) {
    throw new Error(
      `${file.pathname}: ${statements - understood} export statement(s) of an unknown form`,
    );
  }
  return names;
}

function namesOf(exports: Map<string, ExportKind>, kind: ExportKind): string[] {
  return [...exports]
    .filter(([, k]) => k === kind)
    .map(([name]) => name)
    .sort();
}

/** `nestjs-ring-redis/core`: the framework-free engine. */
const CORE_VALUES = [
  'HashRing',
  'RING_DICT_OPTION_NAMES',
  'RING_EVENT_CHANNEL',
  'RingArgumentError',
  'RingClusterUnavailableError',
  'RingCodecError',
  'RingConfigError',
  'RingConnectionError',
  'RingDict',
  'RingError',
  'RingKeyError',
  'crc32Hash',
  'decodeValue',
  'defaultSlices',
  'encodeValue',
  'fnv132Hash',
  'fnv164Hash',
  'fnv1a32Hash',
  'fnv1a64Hash',
  'fnv1aHash',
  'hashBytes',
  'isConnectionError',
  'jsonCodec',
  'md5Hash',
  'msgpackCodec',
  'parseRingNodes',
  'resolveCodec',
  'resolveHashFunction',
  'stringCodec',
  'utf8Bytes',
];
const CORE_TYPES = [
  'HandoffMode',
  'HandoffOverflowPolicy',
  'HandoffReport',
  'HashFunction',
  'HashFunctionName',
  'HashRingOptions',
  'RingBinaryCodec',
  'RingClearOptions',
  'RingCodec',
  'RingCodecOption',
  'RingCompressionAlgorithm',
  'RingCompressionOptions',
  'RingDictOptions',
  'RingDistribution',
  'RingEvent',
  'RingEventMessage',
  'RingEventType',
  'RingGroupsConfig',
  'RingNearCacheOptions',
  'RingMigration',
  'RingNodeConfig',
  'RingNodePing',
  'RingNodeState',
  'RingNodesConfig',
  'RingSetOptions',
  'RingTextCodec',
];

/** `nestjs-ring-redis`: the engine, the twemproxy importer and the Nest layer. */
const ROOT_VALUES = [
  ...CORE_VALUES,
  'InjectRingDict',
  'MAX_KEY_BYTES',
  'RING_REDIS_LOGGER_CONTEXT',
  'RING_REDIS_MODULE_OPTIONS',
  'RingCacheService',
  'RingCached',
  'RingCachedExplorer',
  'RingRedisModule',
  'RingRedisService',
  'RingUnavailableFilter',
  'TwemproxyConfigError',
  'UnserializableArgumentError',
  'formatTwemproxyImport',
  'fromTwemproxy',
  'getRingDictToken',
  'serializeArgs',
];
const ROOT_TYPES = [
  ...CORE_TYPES,
  'Duration',
  'DurationString',
  'FromTwemproxyOptions',
  'RingCacheBehaviour',
  'RingCachedCodecName',
  'RingCachedLockOptions',
  'RingCachedOptions',
  'RingGroupEvent',
  'RingGroupOptions',
  'RingRedisModuleAsyncOptions',
  'RingRedisModuleOptions',
  'RingRedisOptionsFactory',
  'RingUnavailableBody',
  'TwemproxyGroupConfig',
  'TwemproxyImport',
  'TwemproxyImportFormat',
  'RingWrapOptions',
];

/** `nestjs-ring-redis/health`: Terminus stays an optional peer, so the indicator lives apart. */
const HEALTH_VALUES = ['RingRedisHealthIndicator'];
const HEALTH_TYPES = ['RingRedisHealthOptions'];

/** `nestjs-ring-redis/keyv`: Keyv stays an optional peer, so the store lives apart. */
const KEYV_VALUES = ['RingKeyvStore'];
const KEYV_TYPES: string[] = [];

const ENTRIES = [
  { entry: 'nestjs-ring-redis', source: 'index.ts', values: ROOT_VALUES, types: ROOT_TYPES },
  {
    entry: 'nestjs-ring-redis/core',
    source: 'core/index.ts',
    values: CORE_VALUES,
    types: CORE_TYPES,
  },
  {
    entry: 'nestjs-ring-redis/health',
    source: 'health/index.ts',
    values: HEALTH_VALUES,
    types: HEALTH_TYPES,
  },
  {
    entry: 'nestjs-ring-redis/keyv',
    source: 'keyv/index.ts',
    values: KEYV_VALUES,
    types: KEYV_TYPES,
  },
];

describe('public exports', () => {
  for (const { entry, source, values, types } of ENTRIES) {
    describe(entry, () => {
      const file = new URL(source, LIB);

      it('exports exactly the listed values', async () => {
        const loaded = (await import(file.href.replace(/\.ts$/, '.js'))) as Record<string, unknown>;
        expect(Object.keys(loaded).sort()).toEqual([...values].sort());
      });

      it('exports exactly the listed types (read from the sources, checked against the values)', async () => {
        const declared = declaredExports(file);
        const loaded = (await import(file.href.replace(/\.ts$/, '.js'))) as Record<string, unknown>;
        // The source reading finds what the loaded module has: it misses no form of export.
        expect(namesOf(declared, 'value')).toEqual(Object.keys(loaded).sort());
        expect(namesOf(declared, 'type')).toEqual([...types].sort());
      });
    });
  }
});
