/**
 * Editing a device's tags: set some keys, remove others. Pure: the CLI parses `k=v` and `k-` words into an
 * edit, the API checks one, and the store applies it to each device's tags with `applyTagEdit`.
 */
import { checkBandwidthTags } from './bandwidth.js';
import { FleetError } from './errors.js';

export interface TagEdit {
  set: Record<string, string>;
  remove: string[];
}

const KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_TAGS = 64;
export const MAX_TAG_VALUE = 256;

/** Refuses an edit that could never apply (bad key or value, nothing to do, one key both set and removed). */
export function checkTagEdit(edit: TagEdit): TagEdit {
  const keys = Object.keys(edit.set);
  if (keys.length === 0 && edit.remove.length === 0) {
    throw new FleetError('VALIDATION', 'tags: name at least one tag to set (key=value) or remove (key-)');
  }
  for (const key of [...keys, ...edit.remove]) {
    if (!KEY.test(key)) {
      throw new FleetError(
        'VALIDATION',
        `tags: "${key}" is not a tag key (letters, digits, _ . : -; at most 64 characters)`,
      );
    }
  }
  for (const key of keys) {
    if (edit.set[key]!.length > MAX_TAG_VALUE) {
      throw new FleetError(
        'VALIDATION',
        `tags: the value of "${key}" is longer than ${MAX_TAG_VALUE} characters`,
      );
    }
    if (edit.remove.includes(key)) {
      throw new FleetError('VALIDATION', `tags: "${key}" is both set and removed`);
    }
  }
  checkBandwidthTags(edit.set);
  return edit;
}

/** `region=west` sets, `region-` removes (kubectl's spelling). */
export function parseTagWords(words: readonly string[]): TagEdit {
  const edit: TagEdit = { set: {}, remove: [] };
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq > 0) edit.set[word.slice(0, eq)] = word.slice(eq + 1);
    else if (word.endsWith('-') && word.length > 1) edit.remove.push(word.slice(0, -1));
    else throw new FleetError('VALIDATION', `"${word}": write key=value to set a tag or key- to remove one`);
  }
  return checkTagEdit(edit);
}

/**
 * The tags after the edit, or the reason it cannot apply to this device (too many tags). `changed` is false
 * when the edit changes nothing: no event is written for it.
 */
export function applyTagEdit(
  before: Readonly<Record<string, string>>,
  edit: TagEdit,
): { ok: true; after: Record<string, string>; changed: boolean } | { ok: false; message: string } {
  const after: Record<string, string> = { ...before, ...edit.set };
  for (const key of edit.remove) delete after[key];
  const count = Object.keys(after).length;
  if (count > MAX_TAGS)
    return { ok: false, message: `the device would have ${count} tags; at most ${MAX_TAGS}` };
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const changed = [...keys].some((k) => before[k] !== after[k]);
  return { ok: true, after, changed };
}

/**
 * What an update client reports about its device (SWUpdate's configData, Mender's inventory) merged into the
 * device's tags, with the client's own `client` tag: keys that are not tag keys are left out, control
 * characters become spaces, values are cut to the tag length, and no new key is added past the tag limit.
 */
export function withReportedAttributes(
  tags: Readonly<Record<string, string>>,
  attributes: Readonly<Record<string, string>>,
  client: string,
): Record<string, string> {
  const merged = { ...tags };
  for (const [key, value] of Object.entries(attributes)) {
    if (!KEY.test(key) || key === 'client') continue;
    // One place is kept for `client`.
    if (!(key in merged) && Object.keys(merged).length >= MAX_TAGS - 1) continue;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed.
    merged[key] = value.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, MAX_TAG_VALUE);
  }
  merged.client = client;
  return merged;
}
