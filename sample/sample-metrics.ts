import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

let exporter: PrometheusExporter | undefined;

/**
 * The process's OpenTelemetry SDK: a meter provider whose reader is the Prometheus exporter,
 * registered globally once, before the app builds its rings (instruments made before an SDK
 * is registered record nothing). The exporter starts no server of its own: the app's
 * MetricsController serves its text at `/metrics`.
 */
export function sampleMetrics(): PrometheusExporter {
  if (exporter === undefined) {
    exporter = new PrometheusExporter({ preventServerStart: true });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [exporter] }));
  }
  return exporter;
}
