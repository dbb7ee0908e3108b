import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start daemons and real peers; two cores do not gain from more forks.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Temp folders, child processes and mounts go when each file ends (the runner runs the
    // cleanups of tests/support/cleanup.ts); the run checks that none are left.
    runner: 'tests/support/runner.ts',
    globalSetup: ['tests/global-setup.ts'],
  },
});
