/**
 * `fleetd server --mqtt URL | --mqtt-port N | --mqtt-tls-port N | --no-mqtt` (and FLEETD_MQTT=off), and for
 * an external broker over TLS `--mqtt-ca FILE [--mqtt-cert FILE --mqtt-key FILE]`, onto MqttSettings. Files
 * are read and parsed here, so a wrong one stops the start with one line naming the flag.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FleetError } from '../core/errors.js';
import type { BrokerClientTls } from './bridge.js';
import type { MqttSettings } from './service.js';

export interface MqttFlags {
  /** commander's value: a URL, false for --no-mqtt, undefined when neither was given. */
  mqtt: string | false | undefined;
  port?: string | undefined;
  tlsPort?: string | undefined;
  /** The external broker's CA, and the server's own client certificate and key for it (files). */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

export function mqttSettingsFromFlags(flags: MqttFlags): MqttSettings | undefined {
  const { mqtt } = flags;
  if (mqtt === false || mqtt === 'off') return undefined;
  const clientTls = flags.ca !== undefined || flags.cert !== undefined || flags.key !== undefined;
  if (mqtt !== undefined && mqtt !== '') {
    if (!/^(mqtts?|wss?|tcp|tls):\/\/[^/]/.test(mqtt)) {
      throw new FleetError(
        'VALIDATION',
        `--mqtt: "${mqtt}" is not a broker URL such as mqtt://127.0.0.1:1883`,
      );
    }
    if (clientTls && !/^(mqtts|wss|tls):/.test(mqtt)) {
      throw new FleetError('VALIDATION', '--mqtt-ca, --mqtt-cert and --mqtt-key need a TLS URL (mqtts://…)');
    }
    return { url: mqtt, ...(clientTls ? { brokerTls: brokerTls(flags) } : {}) };
  }
  if (clientTls) {
    throw new FleetError(
      'VALIDATION',
      '--mqtt-ca, --mqtt-cert and --mqtt-key are for an external broker (--mqtt mqtts://…)',
    );
  }
  const settings: MqttSettings = { portRequired: false, tlsPortRequired: false };
  if (flags.port !== undefined && flags.port !== '') {
    settings.port = portNumber(flags.port, '--mqtt-port');
    settings.portRequired = true;
  }
  if (flags.tlsPort !== undefined && flags.tlsPort !== '') {
    settings.tlsPort = portNumber(flags.tlsPort, '--mqtt-tls-port');
    settings.tlsPortRequired = true;
  }
  return settings;
}

function portNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new FleetError('VALIDATION', `${flag}: "${text}" is not a port number`);
  }
  return n;
}

function brokerTls(flags: MqttFlags): BrokerClientTls {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new FleetError('VALIDATION', '--mqtt-cert and --mqtt-key go together');
  }
  const tls: BrokerClientTls = { caPems: [] };
  if (flags.ca !== undefined) {
    const pem = readPem(flags.ca, '--mqtt-ca');
    parsed(flags.ca, '--mqtt-ca', 'a PEM certificate', () => new X509Certificate(pem));
    tls.caPems.push(pem);
  }
  if (flags.cert !== undefined && flags.key !== undefined) {
    tls.certificatePem = readPem(flags.cert, '--mqtt-cert');
    parsed(flags.cert, '--mqtt-cert', 'a PEM certificate', () => new X509Certificate(tls.certificatePem!));
    tls.privateKeyPem = readPem(flags.key, '--mqtt-key');
    parsed(flags.key, '--mqtt-key', 'a PEM private key', () => createPrivateKey(tls.privateKeyPem!));
  }
  return tls;
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new FleetError(
      'VALIDATION',
      `${flag}: cannot read ${file}: ${(error as Error).message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
}

function parsed(file: string, flag: string, what: string, parse: () => unknown): void {
  try {
    parse();
  } catch (error) {
    throw new FleetError('VALIDATION', `${flag}: ${file} is not ${what}`, undefined, { cause: error });
  }
}
