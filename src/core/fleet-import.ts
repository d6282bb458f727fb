/**
 * Turns an import file (shaped like the POS fixture) into device records. When the file names the
 * instant its timestamps were taken at (`now`), every timestamp is shifted so that instant maps to the
 * server's current time: a fixture stays "6 online, 3 offline, 1 unknown" whenever it is loaded.
 */
import { checkTimeZone, type DeviceRecord, isValidDeviceId } from './device.js';
import { FleetError } from './errors.js';

export interface ImportDevice {
  id: string;
  name?: string;
  firmware_version?: string | null;
  hardware_type?: string | null;
  last_seen?: string | null;
  location?: string | null;
  timezone?: string | null;
  customer?: string | null;
  tags?: Record<string, string>;
  /** The device may join without a token on a server in approval mode, accepted at its first request. */
  preauthorized?: boolean;
}

export interface ImportFile {
  now?: string;
  description?: string;
  devices: ImportDevice[];
}

function instant(text: string, field: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms) || !/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(text)) {
    throw new FleetError('VALIDATION', `${field}: "${text}" is not an ISO-8601 instant with a time zone`);
  }
  return ms;
}

/** The ids the file pre-authorises (`preauthorized: true`): Mender's pre-authorisation, by id. */
export function preauthorizedIds(file: ImportFile): Set<string> {
  return new Set(file.devices.filter((d) => d.preauthorized === true).map((d) => d.id));
}

export function importRecords(file: ImportFile, serverNow: number): DeviceRecord[] {
  const shift = file.now === undefined ? 0 : serverNow - instant(file.now, 'now');
  const seen = new Set<string>();
  return file.devices.map((d, i) => {
    const at = `devices[${i}]`;
    if (!isValidDeviceId(d.id)) {
      throw new FleetError(
        'VALIDATION',
        `${at}.id: "${d.id}" is not a device id (letters, digits, . _ : - ; at most 128 characters)`,
      );
    }
    if (seen.has(d.id)) throw new FleetError('VALIDATION', `${at}.id: "${d.id}" appears twice in the file`);
    seen.add(d.id);
    if (d.timezone != null) checkTimeZone(d.timezone, `${at}.timezone`);
    let lastSeen: number | null | undefined = d.last_seen === null ? null : undefined;
    if (typeof d.last_seen === 'string') {
      lastSeen = instant(d.last_seen, `${at}.last_seen`) + shift;
      if (lastSeen > serverNow) {
        throw new FleetError('VALIDATION', `${at}.last_seen: ${d.last_seen} is in the future`);
      }
    }
    const record: DeviceRecord = { id: d.id };
    if (d.name !== undefined) record.name = d.name;
    if (d.firmware_version !== undefined) record.firmwareVersion = d.firmware_version;
    if (d.hardware_type !== undefined) record.hardwareType = d.hardware_type;
    if (d.location !== undefined) record.location = d.location;
    if (d.timezone !== undefined) record.timezone = d.timezone;
    if (d.customer !== undefined) record.customer = d.customer;
    if (d.tags !== undefined) record.tags = d.tags;
    if (lastSeen !== undefined) record.lastSeen = lastSeen;
    return record;
  });
}
