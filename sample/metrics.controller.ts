import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Req, Res } from '@nestjs/common';
import { sampleMetrics } from './sample-metrics.js';

/** `GET /metrics`: every instrument of the app in Prometheus' text format, for a scrape. */
@Controller('metrics')
export class MetricsController {
  @Get()
  scrape(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    sampleMetrics().getMetricsRequestHandler(request, response);
  }
}
