import { Controller, Get, Param } from '@nestjs/common';
import { InjectRingDict, RingCacheService, RingDict } from '../lib/index.js';
import { WeatherService } from './weather.service.js';

@Controller('weather')
export class WeatherController {
  constructor(
    private readonly weather: WeatherService,
    private readonly cache: RingCacheService,
    @InjectRingDict('test') private readonly dict: RingDict,
  ) {}

  @Get(':city')
  async forecast(@Param('city') city: string) {
    const before = this.weather.computations;
    const forecast = await this.weather.forecast(city);
    const entry = this.dict.getEntry(this.cache.keyFor(WeatherService, 'forecast', city));
    return {
      hit: this.weather.computations === before,
      entry,
      node: this.dict.aliveHash.locate(entry) ?? null,
      forecast,
    };
  }
}
