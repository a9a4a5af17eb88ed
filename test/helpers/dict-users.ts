import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { InjectRingDict, type RingDict } from '../../lib/index.js';

/**
 * Services that inject RingDicts the ways a user writes it, for the suites of
 * RingRedisModule's forRoot and forRootAsync: both must hand them the same dicts.
 */

/** Two groups, 'test' and 'sessions', through constructor parameters. */
@Injectable()
export class TwoGroups {
  constructor(
    @InjectRingDict('test') readonly test: RingDict,
    @InjectRingDict('sessions') readonly sessions: RingDict,
  ) {}
}

/** The 'default' group, named by leaving the name out. */
@Injectable()
export class DefaultUser {
  constructor(@InjectRingDict() readonly dict: RingDict) {}
}

/** The 'test' group, through a property. */
@Injectable()
export class PropertyUser {
  @InjectRingDict('test') readonly dict!: RingDict;
}
