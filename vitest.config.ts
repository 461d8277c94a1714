import { defineConfig } from 'vitest/config';

/**
 * Two projects: `unit` (no I/O, files in parallel) and `integration` (real redis-server
 * instances, clusters, Prometheus and service processes). The second runs its files one at a time:
 * on a 2-core CI box, two files each starting a 6-node Redis Cluster or 4 service processes would
 * starve each other into timeouts that say nothing about the code.
 */
const shared = {
  pool: 'forks' as const,
  testTimeout: 30_000,
  hookTimeout: 120_000,
  teardownTimeout: 20_000,
};

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/unit/**/*.test.ts', 'benchmarks/test/**/*.test.ts'] } },
      {
        test: {
          ...shared,
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/deploy/**/*.test.ts', 'test/regressions/**/*.test.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
