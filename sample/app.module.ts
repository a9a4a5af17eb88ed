import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RingRedisModule } from '../lib/index.js';
import { RingRedisHealthIndicator } from '../lib/health/index.js';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';
import { DemoNodesController, SAMPLE_FLEET } from './demo-nodes.controller.js';
import { HealthController } from './health.controller.js';
import { KvController } from './kv.controller.js';
import { MetricsController } from './metrics.controller.js';
import { RingController } from './ring.controller.js';
import { SampleConfig } from './sample-config.js';
import { WeatherController } from './weather.controller.js';
import { WeatherService } from './weather.service.js';

@Module({ providers: [SampleConfig], exports: [SampleConfig] })
class SampleConfigModule {}

@Module({})
export class AppModule {
  /** `fleet`: the redis-server processes the sample started itself, if any. */
  static register(fleet?: RedisFleet): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TerminusModule,
        RingRedisModule.forRootAsync({
          imports: [SampleConfigModule],
          inject: [SampleConfig],
          useFactory: (config: SampleConfig) => ({
            groups: { test: config.nodes },
            defaults: { prefix: config.prefix, commandTimeout: 300, heartbeatInterval: 500 },
          }),
          groups: ['test'],
          isGlobal: true,
        }),
      ],
      controllers: [
        WeatherController,
        RingController,
        KvController,
        HealthController,
        MetricsController,
        ...(fleet ? [DemoNodesController] : []),
      ],
      providers: [
        WeatherService,
        RingRedisHealthIndicator,
        ...(fleet ? [{ provide: SAMPLE_FLEET, useValue: fleet }] : []),
      ],
    };
  }
}
