import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Put,
} from '@nestjs/common';
import { InjectRingDict, RingConfigError, RingDict } from '../lib/index.js';

/** The injected RingDict used directly: JSON values, optional TTL in seconds. */
@Controller('kv')
export class KvController {
  constructor(@InjectRingDict('test') private readonly dict: RingDict) {}

  @Put(':key')
  async put(@Param('key') key: string, @Body() body: unknown) {
    if (body === null || typeof body !== 'object' || !('value' in body)) {
      throw new BadRequestException('expected a JSON body { "value": any, "ttl"?: seconds }');
    }
    const { value, ttl } = body as { value: unknown; ttl?: unknown };
    if (value === undefined) throw new BadRequestException('"value" must not be undefined');
    if (ttl !== undefined && (typeof ttl !== 'number' || !(ttl > 0))) {
      throw new BadRequestException('"ttl" must be a number of seconds > 0');
    }
    try {
      await this.dict.set(key, value, { ttl });
    } catch (error) {
      // The dict has the last word on what a valid ttl is (e.g. at least 1 ms): a 400, not a 500.
      if (error instanceof RingConfigError) throw new BadRequestException(error.message);
      throw error;
    }
    return {
      key,
      entry: this.dict.getEntry(key),
      node: this.dict.aliveHash.locate(this.dict.getEntry(key)),
    };
  }

  @Get(':key')
  async get(@Param('key') key: string) {
    const value = await this.dict.get(key);
    if (value === undefined) throw new NotFoundException(`no value for "${key}"`);
    return { key, value };
  }

  @Delete(':key')
  @HttpCode(200)
  async delete(@Param('key') key: string) {
    if (!(await this.dict.delete(key))) throw new NotFoundException(`no value for "${key}"`);
    return { key, deleted: true };
  }
}
