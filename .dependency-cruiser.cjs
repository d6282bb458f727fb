/**
 * FleetD's import boundaries (`npm run check:imports`, part of `npm test`). The layers, bottom up — a folder
 * may import only the folders listed for it (src/README.md explains them):
 *
 *   core        nothing of FleetD: pure rules, time passed in
 *   protocol    core                        device and operator message schemas and their JSON
 *   store       core                        the storage port and its adapters
 *   registry    core, store                 credentials, heartbeat and report batching, status sweep
 *   engine      core, store                 the rollout reconciler and its services
 *   artifacts   core, store                 blobs, signing, verification
 *   pki         core                        the FleetD CA: X.509 certificates, CSRs, the revocation list
 *   events      core, protocol, store       webhook delivery
 *   transport   core, protocol, store, registry, pki
 *   server      everything above but transport; its composition root (serve.ts) also wires transport/service
 *   agent       core, protocol, pki         the device side never sees the server's code
 *   sim         core, protocol, store, engine, agent, and the server's composition root (serve.ts)
 *   cli         anything: the entry point
 *
 * A unit test beside its module (`*.test.ts`) may also import the module it checks against (the signing test
 * verifies with the agent's verifier). The allowed graph has no cycle, so no folder-level cycle can come back.
 */
const layer = (folder, allowed) => ({
  name: `${folder}-imports-only-${allowed.length ? allowed.join('-') : 'itself'}`,
  comment: `src/${folder}/ may import ${allowed.length ? allowed.map((f) => `src/${f}/`).join(', ') : 'nothing of FleetD outside itself'} (see .dependency-cruiser.cjs)`,
  severity: 'error',
  from: { path: `^src/${folder}/`, pathNot: '\\.test\\.ts$' },
  to: { path: '^src/', pathNot: `^src/(${[folder, ...allowed].join('|')})/` },
});

module.exports = {
  forbidden: [
    layer('core', []),
    layer('protocol', ['core']),
    layer('store', ['core']),
    layer('registry', ['core', 'store']),
    layer('engine', ['core', 'store']),
    layer('artifacts', ['core', 'store']),
    layer('events', ['core', 'protocol', 'store']),
    layer('pki', ['core']),
    layer('transport', ['core', 'protocol', 'store', 'registry', 'pki']),
    {
      name: 'server-imports-no-edge',
      comment:
        'src/server/ may import core, protocol, store, registry, engine, artifacts, events and pki; only its composition root (serve.ts) wires transport',
      severity: 'error',
      from: { path: '^src/server/', pathNot: ['\\.test\\.ts$', '^src/server/serve\\.ts$'] },
      to: { path: '^src/', pathNot: '^src/(server|core|protocol|store|registry|engine|artifacts|events|pki)/' },
    },
    {
      name: 'composition-root-takes-transport-service-only',
      comment: "server/serve.ts wires the transport through its entry (transport/service.ts), not its internals",
      severity: 'error',
      from: { path: '^src/server/serve\\.ts$' },
      to: {
        path: '^src/',
        pathNot: [
          '^src/(server|core|protocol|store|registry|engine|artifacts|events|pki)/',
          '^src/transport/service\\.ts$',
        ],
      },
    },
    layer('agent', ['core', 'protocol', 'pki']),
    {
      name: 'sim-imports-its-layers-and-the-composition-root',
      comment:
        "src/sim/ may import core, protocol, store, engine, events (the event pruner), agent, and the server only through its composition root (serve.ts)",
      severity: 'error',
      from: { path: '^src/sim/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/(sim|core|protocol|store|engine|events|agent)/', '^src/server/serve\\.ts$'] },
    },
    {
      name: 'nothing-imports-the-cli',
      comment: 'src/cli/ is the entry point: nothing below imports it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'test-support-is-for-tests',
      comment: 'src/ never imports test/ or bench/',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // Type-only imports are dependencies too: a type from a higher layer ties the layers as much as a value.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.tsx', '.js'] },
  },
};
