/** The handler for each release type: the release declares its type, the agent picks the handler. */
import type { ComponentType } from '../../core/release-bundle.js';
import { archive } from './archive.js';
import { container } from './container.js';
import { file } from './file.js';
import type { InstallHandler } from './handler.js';
import { packageHandler } from './package.js';
import { rauc } from './rauc.js';
import { script } from './script.js';
import { swupdate } from './swupdate.js';

const HANDLERS: Record<ComponentType, InstallHandler> = {
  firmware: file,
  file,
  app: file,
  archive,
  script,
  swu: swupdate,
  rauc,
  package: packageHandler,
  container,
};

/** Undefined for `bundle` (installed component by component) and for a type this agent does not know. */
export function handlerFor(type: string): InstallHandler | undefined {
  return Object.hasOwn(HANDLERS, type) ? HANDLERS[type as ComponentType] : undefined;
}

/** Types whose payload is a directory extracted from the artifact, not the artifact itself. */
export const EXTRACTED_TYPES: readonly string[] = ['archive', 'bundle'];
