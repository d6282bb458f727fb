/** Reads `--installers FILE` and checks it whole, so a typo stops the agent at start, not mid-update. */
import type { InstallerConfig } from './handler.js';

const SECTIONS: Record<keyof InstallerConfig, Record<string, 'string' | 'strings' | 'map'>> = {
  file: { targets: 'map' },
  archive: { targets: 'map' },
  rauc: { command: 'string', config: 'string' },
  swupdate: { command: 'string', args: 'strings' },
  package: { command: 'string', root: 'string', admindir: 'string' },
  container: { engine: 'string', services: 'map', restart: 'string' },
};

export function parseInstallerConfig(text: string): InstallerConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--installers: not JSON: ${(e as Error).message}`);
  }
  const problems: string[] = [];
  if (!isObject(raw)) throw new Error('--installers: must be a JSON object');
  for (const [section, value] of Object.entries(raw)) {
    const fields = Object.hasOwn(SECTIONS, section) ? SECTIONS[section as keyof InstallerConfig] : undefined;
    if (!fields) {
      problems.push(`${section}: unknown (known: ${Object.keys(SECTIONS).join(', ')})`);
      continue;
    }
    if (!isObject(value)) {
      problems.push(`${section}: must be an object`);
      continue;
    }
    for (const [field, v] of Object.entries(value)) {
      const kind = Object.hasOwn(fields, field) ? fields[field] : undefined;
      const good =
        kind === 'string'
          ? typeof v === 'string' && v !== ''
          : kind === 'strings'
            ? Array.isArray(v) && v.every((s) => typeof s === 'string')
            : kind === 'map'
              ? isObject(v) && Object.values(v).every((s) => typeof s === 'string' && s !== '')
              : false;
      if (!kind) problems.push(`${section}.${field}: unknown`);
      else if (!good) problems.push(`${section}.${field}: must be ${describe(kind)}`);
    }
  }
  if (problems.length > 0) throw new Error(`--installers: ${problems.join('; ')}`);
  return raw as InstallerConfig;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (kind: 'string' | 'strings' | 'map') =>
  kind === 'string'
    ? 'a non-empty string'
    : kind === 'strings'
      ? 'an array of strings'
      : 'an object of name → path';
