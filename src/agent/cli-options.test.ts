import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Agent } from './agent.js';
import { agentOptionsFromFlags } from './cli-options.js';

describe('agent CLI flags', () => {
  it('map onto AgentOptions, reading the public key file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-cli-'));
    const keyFile = join(dir, 'release.pub');
    const { publicKey } = generateKeyPairSync('ed25519');
    await writeFile(keyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    const options = await agentOptionsFromFlags({
      server: 'https://fleet.example.com',
      enrollToken: 'fld_enroll_x',
      deviceId: 'pos-nyc-001',
      hardware: 'pos-x200',
      stateDir: join(dir, 'state'),
      publicKey: keyFile,
      healthTcp: '127.0.0.1:8080',
      firmware: '2.1.0',
    });
    expect(options).toMatchObject({
      server: 'https://fleet.example.com',
      enrollToken: 'fld_enroll_x',
      deviceId: 'pos-nyc-001',
      hardwareType: 'pos-x200',
      stateDir: join(dir, 'state'),
      health: { kind: 'tcp', host: '127.0.0.1', port: 8080 },
      firmwareVersion: '2.1.0',
    });
    expect(new Agent(options)).toBeInstanceOf(Agent);
  });

  it('fails at start on a bad flag', async () => {
    const base = {
      server: 'http://x',
      deviceId: 'd',
      hardware: 'h',
      stateDir: '/tmp/x',
      publicKey: '/nonexistent',
    };
    await expect(agentOptionsFromFlags(base)).rejects.toThrow(/ENOENT/);
  });
});
