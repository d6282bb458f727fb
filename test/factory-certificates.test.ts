/**
 * Factory certificates end to end, on every store backend: a manufacturer's CA made by `openssl`, trusted with
 * the real `fleetd ca trust` process; `curl --cert` with a device certificate it issued heartbeats over real TLS
 * and the device registers itself (hardware type from the OU or an OID extension, tags from the trust rule).
 * Untrusted CAs, `ca untrust`, revocation, a CN naming another device and bad input are refused; a second
 * replica on the same database follows the trusted set when it polls.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { DEFAULT_THRESHOLDS } from '../src/core/device.js';
import { hashSecret } from '../src/registry/credentials.js';
import { createServer, type ServerParts } from '../src/server/serve.js';
import type { Store } from '../src/store/store.js';
import { type FactoryCa, factoryCa, leafCertificate, MODEL_OID } from './support/factory-pki.js';
import { curl, type MtlsServer } from './support/mtls-server.js';
import { FLEETD, tempDir } from './support/processes.js';
import { forEachBackend } from './support/stores.js';

const run = promisify(execFile);

interface Replica extends MtlsServer {
  parts: ServerParts;
}

/** A replica with `--tls auto` on `store`, its test files (keys, certificates) in the shared folder `dir`. */
async function startReplica(store: Store, dir: string, clock: ManualClock): Promise<Replica> {
  const dataDir = tempDir();
  const parts = await createServer({
    dataDir,
    store,
    clock,
    logLevel: 'silent',
    host: '127.0.0.1',
    tls: { kind: 'auto' },
  });
  await parts.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = parts.app.server.address() as AddressInfo;
  const caFile = join(dataDir, 'pki', 'ca.crt');
  return {
    url: `https://127.0.0.1:${port}`,
    app: parts.app,
    store,
    clock,
    dir,
    caFile,
    admin: { authorization: `Bearer ${parts.adminToken ?? ''}` },
    parts,
    close: () => parts.app.close(),
  };
}

/** The real `fleetd` CLI against a replica, as an operator runs it; never throws, gives code and output. */
async function fleetd(server: Replica, token: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [FLEETD, '--server', server.url, '--token', token, '--ca', server.caFile, ...args],
      { env: { ...process.env, FLEETD_SERVER: '', FLEETD_TOKEN: '' } },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const heartbeat = (server: Replica, file: string, deviceId: string) =>
  curl(server, 'POST', '/api/device/v1/heartbeat', {
    cert: `${file}.crt`,
    key: `${file}.key`,
    json: { device_id: deviceId, firmware_version: '1.0.0' },
  });

/** A heartbeat on a kept-alive connection of `agent`: says whether the connection was one opened before. */
function keptAliveHeartbeat(server: Replica, agent: Agent, deviceId: string) {
  return new Promise<{ status: number; reused: boolean; body: string }>((resolve, reject) => {
    const req = httpsRequest(
      `${server.url}/api/device/v1/heartbeat`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ device_id: deviceId }));
  });
}

const ctx = (clock: ManualClock) => ({ now: clock.now(), thresholds: DEFAULT_THRESHOLDS });

async function eventsOf(store: Store, prefix: string) {
  return store.listEvents({ after: 0, limit: 100, typePrefix: prefix });
}

forEachBackend((backend) => {
  let a: Replica;
  let b: Replica;
  let token: string;
  let acme: FactoryCa;
  let dir: string;
  beforeEach(async () => {
    const [storeA, storeB] = await backend.openPair();
    dir = tempDir('fleetd-factory-');
    const clock = new ManualClock(Date.now());
    a = await startReplica(storeA, dir, clock);
    token = a.parts.adminToken!;
    b = await startReplica(storeB, dir, clock);
    acme = factoryCa(dir, 'acme');
    acme.issue('fac-1', 'fac-1', { ou: 'gateway-x1', model: 'gw-oid-model' });
    return async () => {
      await b.close();
      await a.close();
    };
  });

  it('fleetd ca trust: a factory certificate heartbeats and its device appears with hardware type and tags', async () => {
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(401);
    const trusted = await fleetd(
      a,
      token,
      'ca',
      'trust',
      acme.certificateFile,
      '--name',
      'acme',
      '--tag',
      'site=berlin',
      '--tag',
      'maker=acme',
      '--hardware-from',
      `oid:${MODEL_OID}`,
    );
    expect(trusted, trusted.stderr).toMatchObject({ code: 0 });
    expect(trusted.stdout).toContain('trusted CA acme');

    const beat = await heartbeat(a, 'fac-1', 'fac-1');
    expect(beat.status, JSON.stringify(beat.body)).toBe(200);
    const device = await a.store.getDevice('fac-1', ctx(a.clock));
    expect(device).toMatchObject({ hardwareType: 'gw-oid-model', tags: { site: 'berlin', maker: 'acme' } });
    expect(await a.store.certificates.ofDevice('fac-1')).toMatchObject([{ issuer: 'acme', revokedAt: null }]);
    // The next heartbeat is the same device, not a second registration.
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(200);
    const registered = await eventsOf(a.store, 'device.registered_by_factory_certificate');
    expect(registered).toMatchObject([{ deviceId: 'fac-1', actor: 'ca:acme', data: { ca: 'acme' } }]);
    const [caEvent] = await eventsOf(a.store, 'ca.trusted');
    expect(caEvent).toMatchObject({ data: { name: 'acme', tags: { site: 'berlin' } } });
    expect(JSON.stringify([...registered, caEvent])).not.toContain('BEGIN');

    const listed = await fleetd(a, token, '--output', 'json', 'ca', 'list');
    expect(JSON.parse(listed.stdout)).toMatchObject({
      trusted_cas: [{ name: 'acme', hardware_from: `oid:${MODEL_OID}`, approve: false }],
    });
    expect(listed.stdout).not.toContain('BEGIN');
  });

  it('reads the hardware type from the OU by default, and names the CA after its CN', async () => {
    const r = await fleetd(a, token, 'ca', 'trust', acme.certificateFile);
    expect(r, r.stderr).toMatchObject({ code: 0 });
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(200);
    expect(await a.store.getDevice('fac-1', ctx(a.clock))).toMatchObject({ hardwareType: 'gateway-x1' });
    expect(await a.store.trustedCas.list()).toMatchObject([{ name: 'acme-Factory-CA', hardwareFrom: 'ou' }]);
  });

  it('refuses a certificate from a CA that is not trusted', async () => {
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    const other = factoryCa(dir, 'other');
    other.issue('stranger', 'stranger-1', { ou: 'x', model: 'x' });
    const beat = await heartbeat(a, 'stranger', 'stranger-1');
    expect(beat.status).toBe(401);
    expect(beat.body.error.message).toContain('CA this server does not trust');
    expect(await a.store.getDevice('stranger-1', ctx(a.clock))).toBeUndefined();
  });

  it('after fleetd ca untrust the same certificate is refused at once', async () => {
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(200);
    const r = await fleetd(a, token, 'ca', 'untrust', 'acme');
    expect(r, r.stderr).toMatchObject({ code: 0 });
    const beat = await heartbeat(a, 'fac-1', 'fac-1');
    expect(beat.status).toBe(401);
    expect(await a.store.trustedCas.list()).toEqual([]);
    expect(await eventsOf(a.store, 'ca.untrusted')).toMatchObject([{ data: { name: 'acme' } }]);
    const again = await fleetd(a, token, 'ca', 'untrust', 'acme');
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toEqual([expect.stringContaining('no trusted CA is named acme')]);
  });

  it('refuses a request on a connection opened before ca untrust', async () => {
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    const agent = new Agent({
      keepAlive: true,
      maxSockets: 1,
      ca: readFileSync(a.caFile),
      cert: readFileSync(join(dir, 'fac-1.crt')),
      key: readFileSync(join(dir, 'fac-1.key')),
    });
    try {
      expect(await keptAliveHeartbeat(a, agent, 'fac-1')).toMatchObject({ status: 200 });
      await fleetd(a, token, 'ca', 'untrust', 'acme');
      const after = await keptAliveHeartbeat(a, agent, 'fac-1');
      expect(after).toMatchObject({ status: 401, reused: true });
      expect(after.body).toContain('a CA this server no longer trusts');
    } finally {
      agent.destroy();
    }
  });

  it('a second replica accepts the CA after its poll, and drops it after the next one', async () => {
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    // Replica b has not polled yet: its listener does not know the CA.
    expect((await heartbeat(b, 'fac-1', 'fac-1')).status).toBe(401);
    expect(await b.parts.factoryCas.refresh()).toBe(true);
    const beat = await heartbeat(b, 'fac-1', 'fac-1');
    expect(beat.status, JSON.stringify(beat.body)).toBe(200);
    expect(await b.store.getDevice('fac-1', ctx(b.clock))).toMatchObject({ hardwareType: 'gateway-x1' });
    // Nothing changed since: the poll applies nothing.
    expect(await b.parts.factoryCas.refresh()).toBe(false);

    await fleetd(a, token, 'ca', 'untrust', 'acme');
    expect(await b.parts.factoryCas.refresh()).toBe(true);
    expect((await heartbeat(b, 'fac-1', 'fac-1')).status).toBe(401);
  });

  it('refuses a factory certificate whose CN names a device with its own credential', async () => {
    await a.store.importDevices([{ id: 'dev-taken', hardwareType: 'orig' }], ctx(a.clock), 'test');
    await a.store.setCredential('dev-taken', hashSecret('s3cret'), ctx(a.clock), 'test');
    acme.issue('impostor', 'dev-taken', { ou: 'gateway-x1', model: 'm' });
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    const beat = await heartbeat(a, 'impostor', 'dev-taken');
    expect(beat.status).toBe(403);
    expect(beat.body.error.message).toContain('already enrolled');
    expect(await a.store.certificates.ofDevice('dev-taken')).toEqual([]);
    expect(await a.store.getDevice('dev-taken', ctx(a.clock))).toMatchObject({ hardwareType: 'orig' });
    const refused = await eventsOf(a.store, 'device.auth_refused');
    expect(refused).toMatchObject([{ data: { reason: 'factory_registration_refused:device_exists' } }]);
  });

  it('a revoked factory certificate stays refused and does not register again', async () => {
    await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme');
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(200);
    const r = await fleetd(a, token, 'devices', 'revoke', 'fac-1');
    expect(r, r.stderr).toMatchObject({ code: 0 });
    expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(401);
    // Another replica, which never saw the certificate, does not register it anew either.
    await b.parts.factoryCas.refresh();
    expect((await heartbeat(b, 'fac-1', 'fac-1')).status).toBe(401);
    expect(await eventsOf(a.store, 'device.registered_by_factory_certificate')).toHaveLength(1);
  });

  it('refuses bad input with one clear line and writes nothing', async () => {
    const notCa = leafCertificate(dir, 'leaf');
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const notPem = join(dir, 'notes.txt');
    copyFileSync(join(dir, 'fac-1.key'), notPem);
    const cases: Array<[string[], string]> = [
      [['ca', 'trust', notCa], 'is not a CA certificate'],
      [['ca', 'trust', garbage], 'could not be parsed'],
      [['ca', 'trust', notPem], 'expected a PEM certificate'],
      [['ca', 'trust', join(dir, 'missing.crt')], 'cannot read'],
      [['ca', 'trust', acme.certificateFile, '--hardware-from', 'serial'], 'must be "ou" or "oid:"'],
      [['ca', 'trust', acme.certificateFile, '--name', 'fleetd'], 'not "fleetd"'],
      [['ca', 'trust', acme.certificateFile, '--tag', 'novalue'], 'is not key=value'],
    ];
    const results = await Promise.all(cases.map(([args]) => fleetd(a, token, ...args)));
    for (const [i, [args, words]] of cases.entries()) {
      expect(results[i]?.code, args.join(' ')).toBe(1);
      expect(results[i]?.stderr.trim().split('\n'), args.join(' ')).toEqual([expect.stringContaining(words)]);
    }
    expect(await a.store.trustedCas.list()).toEqual([]);
    expect(await eventsOf(a.store, 'ca.')).toEqual([]);
  });

  describe('with a CA whose devices wait for approval', () => {
    it('keeps the device in the approval queue until an operator accepts it, then takes its certificate', async () => {
      const r = await fleetd(a, token, 'ca', 'trust', acme.certificateFile, '--name', 'acme', '--approve');
      expect(r, r.stderr).toMatchObject({ code: 0 });
      expect(await a.store.trustedCas.list()).toMatchObject([{ name: 'acme', approve: true }]);
      const waiting = await heartbeat(a, 'fac-1', 'fac-1');
      expect(waiting.status).toBe(403);
      expect(JSON.stringify(waiting.body)).toContain('APPROVAL_PENDING');
      expect(await a.store.getDevice('fac-1', ctx(a.clock))).toMatchObject({ admission: 'pending' });
      expect(await a.store.certificates.ofDevice('fac-1')).toEqual([]);
      // Asking again changes nothing while it waits.
      expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(403);

      const accepted = await fleetd(a, token, 'devices', 'accept', 'fac-1');
      expect(accepted, accepted.stderr).toMatchObject({ code: 0 });
      expect((await heartbeat(a, 'fac-1', 'fac-1')).status).toBe(200);
      expect(await a.store.getDevice('fac-1', ctx(a.clock))).toMatchObject({ admission: 'accepted' });
      expect(await a.store.certificates.ofDevice('fac-1')).toMatchObject([
        { issuer: 'acme', revokedAt: null },
      ]);
    });
  });
});
