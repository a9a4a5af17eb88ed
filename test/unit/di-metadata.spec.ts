import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';

@Injectable()
class Dep {
  value = 42;
}
@Injectable()
class Consumer {
  constructor(readonly dep: Dep) {}
}
@Module({ providers: [Dep, Consumer] })
class M {}

describe('test toolchain', () => {
  it('emits decorator metadata so Nest injects constructor dependencies', async () => {
    const ref = await Test.createTestingModule({ imports: [M] }).compile();
    expect(ref.get(Consumer).dep.value).toBe(42);
  });
});
