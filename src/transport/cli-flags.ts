/** `fleetd server --mqtt URL | --mqtt-port N | --no-mqtt` (and FLEETD_MQTT=off) onto MqttSettings. */
import { FleetError } from '../core/errors.js';
import type { MqttSettings } from './service.js';

/** `mqtt` is commander's value: a URL, false for --no-mqtt, undefined when neither was given. */
export function mqttSettingsFromFlags(
  mqtt: string | false | undefined,
  port: string | undefined,
): MqttSettings | undefined {
  if (mqtt === false || mqtt === 'off') return undefined;
  if (mqtt !== undefined && mqtt !== '') {
    if (!/^(mqtts?|wss?|tcp|tls):\/\/[^/]/.test(mqtt)) {
      throw new FleetError(
        'VALIDATION',
        `--mqtt: "${mqtt}" is not a broker URL such as mqtt://127.0.0.1:1883`,
      );
    }
    return { url: mqtt };
  }
  if (port === undefined || port === '') return { portRequired: false };
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new FleetError('VALIDATION', `--mqtt-port: "${port}" is not a port number`);
  }
  return { port: n, portRequired: true };
}
