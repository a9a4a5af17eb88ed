import { Injectable } from '@nestjs/common';
import { RingCached } from '../lib/index.js';

export interface Forecast {
  city: string;
  days: { day: number; celsius: number }[];
  computedAt: string;
}

/** A deliberately slow computation, memoised through the ring for 30 seconds. */
@Injectable()
export class WeatherService {
  /** How many times the real computation ran: the controller tells hits from misses by it. */
  computations = 0;

  @RingCached({ prefix: 'weather:', ttl: 30, group: 'test' })
  async forecast(city: string): Promise<Forecast> {
    this.computations++;
    await new Promise((resolve) => setTimeout(resolve, 300));
    let seed = 0;
    for (const byte of Buffer.from(city.toLowerCase())) seed = (seed * 31 + byte) % 1000;
    return {
      city,
      days: [0, 1, 2].map((day) => ({ day, celsius: ((seed + day * 7) % 35) - 5 })),
      computedAt: new Date().toISOString(),
    };
  }
}
