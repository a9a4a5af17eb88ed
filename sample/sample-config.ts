import { Injectable } from '@nestjs/common';
import type { RingNodesConfig } from '../lib/index.js';
import { nodesFromEnv } from './nodes-from-env.js';

/** The sample's configuration, read from the environment (a stand-in for @nestjs/config). */
@Injectable()
export class SampleConfig {
  readonly nodes: RingNodesConfig = nodesFromEnv(process.env.RING_REDIS_NODES ?? '');
  readonly prefix = process.env.RING_REDIS_PREFIX ?? 'sample:';
}
