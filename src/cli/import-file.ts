/**
 * Checks a whole import file before anything is sent, with the server's own schema and rules, so a mistake
 * anywhere in it is named by its index in the file (`devices[11000].timezone`) and nothing is imported.
 */
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { type ImportFile, importRecords } from '../core/fleet-import.js';
import { ImportBody } from '../protocol/operator-api.js';
import { CliError } from './client.js';

const validate = (() => {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false });
  addFormats.default(ajv);
  return ajv.compile<ImportFile>(ImportBody);
})();

/** `/devices/11000/timezone` → `devices[11000].timezone`. */
function fieldPath(pointer: string): string {
  const path = pointer
    .split('/')
    .slice(1)
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join('');
  return path.startsWith('.') ? path.slice(1) : path || 'the file';
}

export function checkImportFile(file: string, body: unknown, now: number): ImportFile {
  if (!validate(body)) {
    const e = validate.errors?.[0];
    const at = fieldPath(e?.instancePath ?? '');
    const params = (e?.params ?? {}) as Record<string, unknown>;
    const why =
      e?.keyword === 'additionalProperties'
        ? `: unknown field "${String(params.additionalProperty)}"`
        : e?.keyword === 'required'
          ? `: missing field "${String(params.missingProperty)}"`
          : e?.keyword === 'maxItems' && at === 'devices'
            ? ` has more than ${String(params.limit)} devices, the most one import takes: split the file (each part is imported whole or not at all)`
            : ` ${e?.message ?? 'is invalid'}`;
    throw new CliError(`${file}: ${at}${why}; nothing was imported`);
  }
  try {
    importRecords(body, now);
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}; nothing was imported`);
  }
  return body;
}
