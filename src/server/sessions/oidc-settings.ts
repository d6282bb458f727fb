/**
 * The OpenID Connect settings of `fleetd server` (docs/access.md): `--oidc-issuer`, `--oidc-client-id`, the
 * role file (`--oidc-roles`, YAML or JSON) and the client secret, from `--oidc-client-secret-file` or the
 * environment variable FLEETD_OIDC_CLIENT_SECRET: never a flag, so it shows in no process list.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { FleetError } from '../../core/errors.js';
import { parseOidcRoleMapping } from '../../core/oidc-role-mapping.js';
import type { OidcOptions } from './oidc-sign-in.js';

export interface OidcFlags {
  issuer?: string | undefined;
  clientId?: string | undefined;
  clientSecretFile?: string | undefined;
  rolesFile?: string | undefined;
}

const read = (file: string, flag: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new FleetError('VALIDATION', `${flag} ${file}: cannot be read (${code})`, undefined, {
      cause: error,
    });
  }
};

/** The settings, or undefined when OpenID Connect is not configured; a half-given configuration is refused. */
export function oidcSettings(
  flags: OidcFlags,
  env: NodeJS.ProcessEnv = process.env,
): OidcOptions | undefined {
  if (flags.issuer === undefined && flags.clientId === undefined && flags.rolesFile === undefined)
    return undefined;
  if (!flags.issuer || !flags.clientId || !flags.rolesFile) {
    throw new FleetError('VALIDATION', '--oidc-issuer, --oidc-client-id and --oidc-roles go together');
  }
  const issuer = new URL(flags.issuer);
  if (issuer.protocol !== 'https:' && !['127.0.0.1', 'localhost', '[::1]'].includes(issuer.hostname)) {
    throw new FleetError(
      'VALIDATION',
      `--oidc-issuer ${flags.issuer}: must be https:// (plain http on loopback only)`,
    );
  }
  const secret = flags.clientSecretFile
    ? read(flags.clientSecretFile, '--oidc-client-secret-file').trim()
    : env.FLEETD_OIDC_CLIENT_SECRET?.trim();
  const text = read(flags.rolesFile, '--oidc-roles');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new FleetError('VALIDATION', `--oidc-roles ${flags.rolesFile}: ${(error as Error).message}`);
  }
  return {
    issuer: flags.issuer,
    clientId: flags.clientId,
    ...(secret ? { clientSecret: secret } : {}),
    mapping: parseOidcRoleMapping(doc, flags.rolesFile),
  };
}
