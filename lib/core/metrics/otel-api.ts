import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';

/** The meter every instrument of the package belongs to. */
export const METER_NAME = 'nestjs-ring-redis';

const require = createRequire(import.meta.url);

/** `@opentelemetry/api` once looked for: the module, or null when it is not installed. */
let api: typeof OtelApi | null | undefined;
let version: string | undefined;

/**
 * `@opentelemetry/api`, an optional peer: undefined when it is not installed. Loaded with a
 * synchronous require, once, so that a dict knows at construction whether to meter (an
 * `import()` would settle after the constructor) and the core's import graph names no
 * package a user may not have. The API keeps its registered provider on `globalThis`, so
 * this copy sees the SDK an app registered through its own import of the API.
 */
export function otelApi(): typeof OtelApi | undefined {
  if (api === undefined) {
    api = null;
    try {
      api = require('@opentelemetry/api') as typeof OtelApi;
      version = packageVersion();
    } catch (error) {
      // A cache must not fail to start over its metrics: said once, and nothing is recorded.
      if (!isNotFound(error)) {
        process.emitWarning(
          `ring-redis: @opentelemetry/api could not be loaded (${(error as Error).message}); no metrics are recorded`,
        );
      }
    }
  }
  return api ?? undefined;
}

/**
 * The package's meter, or undefined when nothing would be recorded: the API is not
 * installed, or no SDK registered a meter provider (the API's no-op one answers).
 * OpenTelemetry's global provider has no proxy: instruments made before an SDK is
 * registered stay no-ops, so the SDK must be started before the rings are built.
 */
export function ringMeter(): OtelApi.Meter | undefined {
  const otel = otelApi();
  if (otel === undefined) return undefined;
  const meter = otel.metrics.getMeter(METER_NAME, version);
  return meter instanceof otel.createNoopMeter().constructor ? undefined : meter;
}

/** This package's version, for the meter; undefined where its package.json cannot be read. */
function packageVersion(): string | undefined {
  try {
    return (require('nestjs-ring-redis/package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function isNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND';
}
