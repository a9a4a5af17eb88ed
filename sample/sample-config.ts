import { Injectable } from '@nestjs/common';
import { parseRingNodes, type RingNodesConfig } from '../lib/index.js';

/** The sample's configuration, read from the environment (a stand-in for @nestjs/config). */
@Injectable()
export class SampleConfig {
  /** `RING_REDIS_NODES`: `name=url` pairs (`node0=redis://…,big:2=redis://…`) or JSON. */
  readonly nodes: RingNodesConfig = parseRingNodes(process.env.RING_REDIS_NODES ?? '');
  readonly prefix = process.env.RING_REDIS_PREFIX ?? 'sample:';
}
