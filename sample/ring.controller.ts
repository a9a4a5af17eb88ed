import { Controller, Get, Param } from '@nestjs/common';
import { InjectRingDict, RingDict } from '../lib/index.js';

@Controller('ring')
export class RingController {
  constructor(@InjectRingDict('test') private readonly dict: RingDict) {}

  @Get('nodes')
  nodes() {
    return {
      alive: this.dict.aliveHash.size,
      total: this.dict.totalHash.size,
      nodes: this.dict.nodeStates(),
    };
  }

  @Get('locate/:key')
  locate(@Param('key') key: string) {
    const entry = this.dict.getEntry(key);
    return {
      key,
      entry,
      aliveNode: this.dict.aliveHash.locate(entry) ?? null,
      totalNode: this.dict.totalHash.locate(entry) ?? null,
    };
  }
}
