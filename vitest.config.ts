/**
 * Three tiers, each a vitest project; `npm test` runs them all.
 * - unit: pure tests beside their modules: no database, no process, no socket; seconds, no build needed.
 * - integration: the app and the store in-process on SQLite, PostgreSQL and Mosquitto, loopback servers.
 * - e2e: spawned `fleetd` servers, agents and CLIs (from dist/, so build first) and Chromium.
 */
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Tests beside their module that still need more than the module: a loopback server, a command, SQLite. */
const INTEGRATION_BESIDE_MODULES = [
  'src/agent/agent.test.ts', // a protocol server on loopback
  'src/agent/downloader.test.ts', // an artifact server on loopback
  'src/agent/health.test.ts', // health commands and probes of loopback servers
  'src/artifacts/signing.test.ts', // checks signatures with the openssl command
  'src/pki/authority.test.ts', // checks certificates with the openssl command
  'src/pki/crl.test.ts',
  'src/pki/device-certificate.test.ts',
  'src/store/filter-sql.test.ts', // compiled filters run on SQLite
];

/** Tests that spawn FleetD processes or drive a browser. */
const END_TO_END = [
  'test/agent-e2e.test.ts',
  'test/agent-mtls-e2e.test.ts',
  'test/agent-mqtt-e2e.test.ts',
  'test/agent-mqtt-mtls-e2e.test.ts',
  'test/agent-rollout-e2e.test.ts',
  'test/cli-artifact-integrity.test.ts',
  'test/cli-deploy.test.ts',
  'test/cli-import.test.ts',
  'test/cli-provision.test.ts',
  'test/cli-signing.test.ts',
  'test/cli-webhooks.test.ts',
  'test/cli.test.ts',
  'test/dashboard.test.ts',
  'test/durability.test.ts',
  'test/operator-files.test.ts',
  'test/replicas.test.ts',
  'test/sim-agents.test.ts',
  'test/tls-cli.test.ts',
  'test/cli-access.test.ts',
  'test/cli-audit.test.ts',
  'test/remote-commands-e2e.test.ts',
  'test/delta-e2e.test.ts',
  'test/swupdate-e2e.test.ts',
  'test/cli-tuf.test.ts',
  'test/agent-tuf-e2e.test.ts',
  'test/mender-e2e.test.ts',
  'test/cli-deploy-quick.test.ts',
  'test/access-e2e.test.ts',
  'test/telemetry-e2e.test.ts',
  'test/installers-e2e.test.ts',
  'test/cli-rehearse.test.ts',
  'test/cli-groups.test.ts',
  'test/config-e2e.test.ts',
  'test/config-staged-e2e.test.ts',
  'test/agent-consent-e2e.test.ts',
  'test/agent-health-gate-e2e.test.ts',
  'test/agent-tuf-migration-e2e.test.ts',
  'test/agent-tuf-delegations-e2e.test.ts',
  'test/agent-director-e2e.test.ts',
  'test/tuf-mirror.test.ts',
];

/**
 * The longest files, started first: with two at a time the run ends when its longest file does, so a long file
 * left for last (a fresh clone has no timings to order by) would leave one worker idle for minutes.
 */
const LONGEST_FIRST = [
  'test/fuzz.test.ts',
  'test/rollouts.test.ts',
  'test/factory-certificates.test.ts',
  'test/fuzz-principals.test.ts',
  'test/cli-audit.test.ts',
  'test/store.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((path) => file.moduleId.endsWith(path));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time on CI's 2 cores: most of a test's time is waiting on processes and sockets.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['src/**/*.test.ts'], exclude: INTEGRATION_BESIDE_MODULES },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts', ...INTEGRATION_BESIDE_MODULES],
          exclude: END_TO_END,
        },
      },
      { extends: true, test: { name: 'e2e', include: END_TO_END } },
    ],
  },
});
