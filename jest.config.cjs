module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/server', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': '<rootDir>/scripts/jest-esbuild-transform.cjs',
    // jose 6 ships ES modules only; Jest 29's module system loads CommonJS, so esbuild converts it.
    '/node_modules/jose/.+\\.js$': '<rootDir>/scripts/jest-esbuild-transform.cjs',
  },
  transformIgnorePatterns: ['/node_modules/(?!jose/)'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 120000,
  // A worker that runs many suites grows: each suite loads the R4 definitions anew and
  // some of every suite stays reachable. One reached V8's 4 GB heap limit mid-suite in a
  // full CI run and was killed (a failed suite that had nothing wrong); recycled between
  // suites once over this, none gets there.
  workerIdleMemoryLimit: '1536MB',
};
