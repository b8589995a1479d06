import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // `npm run test:unit` prints what the unit tier alone proves of the engine and the role drivers,
    // and fails under the floor the project holds itself to
    coverage: {
      provider: 'v8',
      include: ['src/engine/**', 'src/roles/**'],
      exclude: ['src/roles/contract.ts'],
      reporter: ['text'],
      thresholds: { branches: 85 },
    },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/lab/calls.test.ts'],
          testTimeout: 20_000,
          // the files share nothing mutable: importing the CLI once per worker, not once per file,
          // is most of the unit tier's wall time
          isolate: false,
        },
      },
      {
        // the Jenkinsfile and the reports checked with Groovy and the JDK (Debian's groovy): kept out of
        // unit, which needs no Java
        test: {
          name: 'jenkins',
          include: ['test/jenkins/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/lab/**/*.e2e.test.ts'],
          // one lab, shared: files run one after another (in no fixed order), so none may rely on another
          fileParallelism: false,
          sequence: { concurrent: false },
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
