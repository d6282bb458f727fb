/**
 * The alert rules file (`--alert-rules FILE`, YAML; docs/alerts.md). Read at start, where a bad file stops the
 * server; read again when it changes (looked at on each evaluation) or on SIGHUP, where a bad file is logged
 * and the rules in force stay: an editor's half-saved file must not silence every alert.
 */
import { readFileSync, statSync } from 'node:fs';
import { parse } from 'yaml';
import { type AlertRule, parseAlertRules } from '../core/alerts/alert-rule.js';
import { FleetError, isFleetError } from '../core/errors.js';

const MAX_FILE_BYTES = 1024 * 1024;

export function readAlertRules(file: string): AlertRule[] {
  let text: string;
  try {
    if (statSync(file).size > MAX_FILE_BYTES) throw new FleetError('VALIDATION', 'larger than 1 MiB');
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const why = isFleetError(error)
      ? error.message
      : ((error as NodeJS.ErrnoException).code ?? String(error));
    throw new FleetError('VALIDATION', `alert rules file ${file}: cannot be read (${why})`, undefined, {
      cause: error,
    });
  }
  try {
    return parseAlertRules(parse(text));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new FleetError('VALIDATION', `alert rules file ${file}: ${message}`, undefined, { cause: error });
  }
}

export class AlertRulesFile {
  private seen: string | undefined;

  constructor(
    readonly file: string,
    private readonly apply: (rules: AlertRule[]) => void,
    private readonly log: { info(obj: unknown, msg: string): void; error(obj: unknown, msg: string): void },
  ) {}

  /** Reads the file and applies its rules; throws on a bad file (the start). */
  load(): void {
    this.seen = this.signature();
    const rules = readAlertRules(this.file);
    this.apply(rules);
    this.log.info({ rules: rules.length }, 'alert rules loaded');
  }

  /** Reads the file again; a bad one is logged and the rules in force stay (SIGHUP, or a change seen). */
  reload(): void {
    try {
      this.load();
    } catch (error) {
      this.log.error({ err: error }, 'alert rules not reloaded: the rules in force stay');
    }
  }

  /** Reloads when the file's size, time or inode changed since it was last read. */
  reloadIfChanged(): void {
    if (this.signature() !== this.seen) this.reload();
  }

  private signature(): string {
    try {
      const s = statSync(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }
}
