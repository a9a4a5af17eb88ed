import { Controller, Inject, NotFoundException, Param, Post } from '@nestjs/common';
import type { RedisFleet } from '../test/helpers/redis-fleet.js';
import type { RedisServer } from '../test/helpers/redis-servers.js';

export const SAMPLE_FLEET = Symbol('SAMPLE_FLEET');

/**
 * Only when the sample started its own redis-server processes: lets `npm run sample:chaos`
 * stop and restart them. The processes are signalled by the process that started them.
 */
@Controller('demo/nodes')
export class DemoNodesController {
  constructor(@Inject(SAMPLE_FLEET) private readonly fleet: RedisFleet) {}

  @Post(':name/kill')
  async kill(@Param('name') name: string) {
    await this.server(name).kill();
    return { node: name, running: false };
  }

  @Post(':name/restart')
  async restart(@Param('name') name: string) {
    await this.server(name).restart();
    return { node: name, running: true };
  }

  private server(name: string): RedisServer {
    const index = Number(/^node(\d+)$/.exec(name)?.[1]);
    const server = this.fleet.servers[index];
    if (!server) throw new NotFoundException(`no local node "${name}"`);
    return server;
  }
}
