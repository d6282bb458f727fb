/** The dedicated metrics token (`--metrics-token-file`): read once at start, kept only as its hash. */
import { readFileSync } from 'node:fs';
import { FleetError } from '../../core/errors.js';
import { hashSecret } from '../../registry/credentials.js';

/** Short tokens are guessable by a scraper-shaped brute force; the generated ones are far longer. */
const MIN_LENGTH = 24;

export function readMetricsToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new FleetError(
      'VALIDATION',
      `--metrics-token-file ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      undefined,
      { cause: error },
    );
  }
  if (token.length < MIN_LENGTH || /\s/.test(token)) {
    throw new FleetError(
      'VALIDATION',
      `--metrics-token-file ${file}: the token must be one word of at least ${MIN_LENGTH} characters (e.g. openssl rand -hex 32)`,
    );
  }
  return hashSecret(token);
}
