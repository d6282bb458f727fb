/** The data folder holds the database, the signing key and the admin token: nobody but the server's user should read it. */
import { statSync } from 'node:fs';

/** A warning to log when the folder is readable (or writable) by its group or others; undefined when it is not. */
export function dataFolderWarning(dir: string): string | undefined {
  const mode = statSync(dir).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  return (
    `the data folder ${dir} has mode ${mode.toString(8).padStart(4, '0')}: other users may read its secrets ` +
    `(database, signing key, admin token); run \`chmod 700 ${dir}\``
  );
}
