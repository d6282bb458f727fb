/** `fleetd/agent`: the device agent as a library. The CLI's `fleetd agent` is a thin wrapper over this. */
export { Agent, AgentFatalError, type AgentObserver, type AgentOptions } from './agent.js';
export { type AgentCliFlags, agentOptionsFromFlags } from './cli-options.js';
export { DeviceClient, type HeartbeatBody, type PendingUpdate, ProtocolError } from './client.js';
export { DownloadError, type DownloadResult, download, type HttpFetch } from './downloader.js';
export { checkHealth, type HealthCheck, healthCheckFromFlags } from './health.js';
export { inspectArchive, install } from './installers.js';
export { type Logger, silentLogger, stderrLogger } from './log.js';
export { MqttChannel, type MqttChannelOptions } from './mqtt-channel.js';
export { deliver, Outbox, type Report } from './outbox.js';
export { backoffMs, heartbeatDelayMs, type Random, seededRandom } from './schedule.js';
export { type SlotName, Slots, type Trial } from './slots.js';
export { type Identity, type JobRecord, type ReleaseRecord, StateDir } from './state-dir.js';
export {
  loadPublicKey,
  type Manifest,
  parseManifest,
  type Verdict,
  verifyArtifact,
  verifyRelease,
} from './verify.js';
