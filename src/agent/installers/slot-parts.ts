/**
 * The parts a slot's release installs as: one for a plain release, one per component for a bundle
 * (core/release-bundle.ts), read from its extracted payload and checked before anything is installed:
 * the description, every component's file, and `requires` against what the device runs now (the other
 * slot's release and its components). The components this device installs are written to the slot as
 * `components.json`, so commit and rollback later see the same list.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BUNDLE_DESCRIPTION,
  componentsFor,
  parseBundleSpec,
  unmetRequirement,
} from '../../core/release-bundle.js';
import { readJson, writeJsonAtomic } from '../fsutil.js';
import { readRelease } from '../state-dir.js';
import type { Verdict } from '../verify.js';
import { EXTRACTED_TYPES } from './index.js';
import type { Part } from './parts.js';

interface InstalledComponent {
  name: string;
  type: string;
  version: string;
  file: string;
}

const COMPONENTS = 'components.json';

/** The parts to install from an extracted bundle in `slotDir/payload`, or why it cannot be installed. */
export async function bundleParts(
  slotDir: string,
  previousSlotDir: string | undefined,
  hardwareType: string,
): Promise<Verdict<Part[]>> {
  const payload = join(slotDir, 'payload');
  let text: string;
  try {
    text = await readFile(join(payload, BUNDLE_DESCRIPTION), 'utf8');
  } catch {
    return { ok: false, reason: `bundle has no ${BUNDLE_DESCRIPTION}` };
  }
  const parsed = parseBundleSpec(text);
  if ('problem' in parsed) return { ok: false, reason: parsed.problem };
  const unmet = unmetRequirement(parsed.spec.requires, await installedVersions(previousSlotDir));
  if (unmet) return { ok: false, reason: unmet };
  const chosen = componentsFor(parsed.spec, hardwareType);
  if (chosen.length === 0)
    return { ok: false, reason: `no component of the bundle is for hardware ${hardwareType}` };
  for (const c of chosen) {
    const found = await stat(join(payload, c.file)).catch(() => undefined);
    if (!found) return { ok: false, reason: `bundle: component ${c.name}'s file ${c.file} is missing` };
  }
  const installed: InstalledComponent[] = chosen.map(({ name, type, version, file }) => ({
    name,
    type,
    version,
    file,
  }));
  await writeJsonAtomic(join(slotDir, COMPONENTS), installed);
  return { ok: true, value: await partsOf(slotDir, previousSlotDir, installed) };
}

/** The parts a slot's release was installed as (one for a plain release), for commit and rollback. */
export async function installedParts(slotDir: string, previousSlotDir: string | undefined): Promise<Part[]> {
  const record = await readRelease(slotDir);
  if (!record) return [];
  if (record.type !== 'bundle') {
    return [
      {
        name: record.name,
        type: record.type,
        version: record.version,
        payload: join(slotDir, 'payload'),
        previous: await previousPayloadOf(previousSlotDir, record.name),
      },
    ];
  }
  return partsOf(
    slotDir,
    previousSlotDir,
    (await readJson<InstalledComponent[]>(join(slotDir, COMPONENTS))) ?? [],
  );
}

async function partsOf(slotDir: string, previousSlotDir: string | undefined, list: InstalledComponent[]) {
  return Promise.all(
    list.map(async (c) => ({
      name: c.name,
      type: c.type,
      version: c.version,
      payload: join(slotDir, 'payload', c.file),
      previous: await previousPayloadOf(previousSlotDir, c.name),
    })),
  );
}

/** The file the other slot installed under this name: what a rollback can reinstall. */
export async function previousPayloadOf(
  previousSlotDir: string | undefined,
  name: string,
): Promise<string | undefined> {
  if (previousSlotDir === undefined) return undefined;
  const record = await readRelease(previousSlotDir);
  if (!record) return undefined;
  if (record.type === 'bundle') {
    const list = (await readJson<InstalledComponent[]>(join(previousSlotDir, COMPONENTS))) ?? [];
    const same = list.find((c) => c.name === name);
    return same ? join(previousSlotDir, 'payload', same.file) : undefined;
  }
  return record.name === name && !EXTRACTED_TYPES.includes(record.type)
    ? join(previousSlotDir, 'payload')
    : undefined;
}

/** Name → version of what the device runs: the release in the slot and, for a bundle, its components. */
export async function installedVersions(slotDir: string | undefined): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  if (slotDir === undefined) return versions;
  const record = await readRelease(slotDir);
  if (!record) return versions;
  versions.set(record.name, record.version);
  if (record.type === 'bundle') {
    for (const c of (await readJson<InstalledComponent[]>(join(slotDir, COMPONENTS))) ?? [])
      versions.set(c.name, c.version);
  }
  return versions;
}
