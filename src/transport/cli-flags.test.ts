import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mqttSettingsFromFlags } from './cli-flags.js';

describe('MQTT flags', () => {
  it('reads ports for the embedded broker, TLS included', () => {
    expect(mqttSettingsFromFlags({ mqtt: undefined })).toEqual({
      portRequired: false,
      tlsPortRequired: false,
    });
    expect(mqttSettingsFromFlags({ mqtt: undefined, port: '1884', tlsPort: '8884' })).toEqual({
      port: 1884,
      portRequired: true,
      tlsPort: 8884,
      tlsPortRequired: true,
    });
    expect(() => mqttSettingsFromFlags({ mqtt: undefined, tlsPort: '99999' })).toThrow(
      /--mqtt-tls-port: "99999" is not a port number/,
    );
    expect(mqttSettingsFromFlags({ mqtt: false })).toBeUndefined();
  });

  it('takes TLS files only for a TLS URL, a certificate only with its key, and only PEM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetd-flags-'));
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    expect(() => mqttSettingsFromFlags({ mqtt: 'mqtt://broker:1883', ca: junk })).toThrow(/need a TLS URL/);
    expect(() => mqttSettingsFromFlags({ mqtt: undefined, ca: junk })).toThrow(/are for an external broker/);
    expect(() => mqttSettingsFromFlags({ mqtt: 'mqtts://broker:8883', cert: junk })).toThrow(/go together/);
    expect(() => mqttSettingsFromFlags({ mqtt: 'mqtts://broker:8883', ca: junk })).toThrow(
      /--mqtt-ca: .* is not a PEM certificate/,
    );
    expect(() =>
      mqttSettingsFromFlags({ mqtt: 'mqtts://broker:8883', ca: join(dir, 'missing.pem') }),
    ).toThrow(/--mqtt-ca: cannot read/);
  });
});
