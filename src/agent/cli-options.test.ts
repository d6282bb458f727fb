import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
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

  it('reads the install handlers configuration and refuses a mistake in it whole, naming each', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-cli-'));
    const keyFile = join(dir, 'release.pub');
    await writeFile(
      keyFile,
      generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }),
    );
    const flags = { server: 'http://x', deviceId: 'd', hardware: 'h', stateDir: dir, publicKey: keyFile };
    const good = join(dir, 'installers.json');
    await writeFile(
      good,
      JSON.stringify({ file: { targets: { conf: '/etc/app.conf' } }, package: { root: '/' } }),
    );
    expect((await agentOptionsFromFlags({ ...flags, installers: good })).installers).toEqual({
      file: { targets: { conf: '/etc/app.conf' } },
      package: { root: '/' },
    });
    expect((await agentOptionsFromFlags({ ...flags, app: ['till=./till --port 80'] })).apps).toEqual([
      { name: 'till', command: './till --port 80' },
    ]);
    await expect(agentOptionsFromFlags({ ...flags, app: ['no command'] })).rejects.toThrow(
      /^--app: "no command" is not NAME=COMMAND/,
    );
    const bad = join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ rauc: { comand: 'rauc' }, swupdate: { args: '-k x' }, apt: {} }));
    await expect(agentOptionsFromFlags({ ...flags, installers: bad })).rejects.toThrow(
      '--installers: rauc.comand: unknown; swupdate.args: must be an array of strings; apt: unknown (known: file, archive, rauc, swupdate, package, container)',
    );
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

  it('--bundle gives every flag; flags given as well win; without a bundle the missing flag is named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetd-cli-'));
    const { publicKey } = generateKeyPairSync('ed25519');
    const files: Record<string, string> = {
      'agent.json': JSON.stringify({
        server: 'https://fleet.example.com',
        device_id: 'pos-7',
        hardware_type: 'pos-x200',
        state_dir: join(dir, 'state'),
        key_algorithm: 'ed25519',
      }),
      'ca.pem': 'the CA',
      'signing.pub': publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'enroll-token': 'fld_enroll_b\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    const bundle = join(dir, 'b.tar.gz');
    await tar.c({ gzip: true, file: bundle, cwd: dir }, Object.keys(files));

    const options = await agentOptionsFromFlags({ bundle });
    expect(options).toMatchObject({
      server: 'https://fleet.example.com',
      deviceId: 'pos-7',
      hardwareType: 'pos-x200',
      stateDir: join(dir, 'state'),
      enrollToken: 'fld_enroll_b',
      ca: 'the CA',
      enrollCertificate: true,
      keyAlgorithm: 'ed25519',
    });
    const overridden = await agentOptionsFromFlags({
      bundle,
      stateDir: join(dir, 'other'),
      keyType: 'ecdsa-p256',
    });
    expect(overridden).toMatchObject({ stateDir: join(dir, 'other'), keyAlgorithm: 'ecdsa-p256' });
    await expect(agentOptionsFromFlags({ bundle, keyType: 'rsa' })).rejects.toThrow(/--key-type: "rsa"/);
    await expect(
      agentOptionsFromFlags({ server: 'https://x', publicKey: join(dir, 'signing.pub') }),
    ).rejects.toThrow('--device-id <id> is required (or --bundle FILE)');
  });
});
