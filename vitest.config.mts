import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Nest's dependency injection reads the constructor parameter types that
  // emitDecoratorMetadata writes; without it every injected service is undefined.
  oxc: {
    decorator: { legacy: true, emitDecoratorMetadata: true },
  },
  test: {
    include: ['test/**/*.spec.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration suites start their own redis-server processes; two cores are
    // plenty for a few suites at once without starving the timing assertions.
    maxWorkers: 2,
    // A test that failed runs once more. Deadlines of a few hundred ms against real servers,
    // with the whole suite on two cores, occasionally meet a starved process (about one full
    // run in three had one such failure, each passing alone); a real fault fails both attempts,
    // and the report marks every test that needed the second one.
    retry: 1,
  },
});
