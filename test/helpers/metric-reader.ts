import { metrics, type Attributes } from '@opentelemetry/api';
import {
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';

/** A reader that exports nothing: a test collects when it wants to read. */
class CollectingReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** One data point of a metric, read back: its attributes and value. */
export interface ReadPoint {
  attributes: Attributes;
  /** A sum's or gauge's value; a histogram's count of recordings. */
  value: number;
  /** A histogram's sum of recorded values. */
  sum?: number;
}

/**
 * An in-memory OpenTelemetry SDK registered as the global meter provider, as an app's SDK
 * would be: the package's meter records into it, and `read()` collects every point of the
 * package's meter (cumulative since the start).
 */
export class InMemoryMetrics {
  private readonly reader = new CollectingReader();
  private readonly provider = new MeterProvider({ readers: [this.reader] });

  /** Registers the SDK globally; call before building the rings. */
  static register(): InMemoryMetrics {
    const sdk = new InMemoryMetrics();
    if (!metrics.setGlobalMeterProvider(sdk.provider)) {
      throw new Error('a global meter provider is registered already');
    }
    return sdk;
  }

  /** Every metric of the `nestjs-ring-redis` meter, by instrument name. */
  async read(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, 'collect failed');
    const out = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      if (scope.scope.name !== 'nestjs-ring-redis') continue;
      for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
    }
    return out;
  }

  /** The points of `name` (none when it recorded nothing), values flattened. */
  async points(name: string): Promise<ReadPoint[]> {
    return pointsOf((await this.read()).get(name));
  }

  async shutdown(): Promise<void> {
    metrics.disable();
    await this.provider.shutdown();
  }
}

export function pointsOf(metric: MetricData | undefined): ReadPoint[] {
  if (metric === undefined) return [];
  if (metric.dataPointType === DataPointType.HISTOGRAM) {
    return (metric.dataPoints as DataPoint<Histogram>[]).map((p) => ({
      attributes: p.attributes,
      value: p.value.count,
      sum: p.value.sum,
    }));
  }
  return (metric.dataPoints as DataPoint<number>[]).map((p) => ({
    attributes: p.attributes,
    value: p.value,
  }));
}

/** The value of the point whose attributes include `match` (0 when none). */
export function valueAt(points: readonly ReadPoint[], match: Attributes): number {
  const found = points.filter((p) =>
    Object.entries(match).every(([k, v]) => p.attributes[k] === v),
  );
  return found.reduce((total, p) => total + p.value, 0);
}
