/**
 * The port of connectivity classes (shared/connectivity.ts, docs/connectivity.md): the classes themselves, and
 * each device's resolution to one of them, kept on the device's row so the derived status reads its own columns.
 */
import type { ConnectivityClass, StoredConnectivityClass } from '../core/connectivity.js';
import type { TimeContext } from './store.js';

export type { StoredConnectivityClass };

export interface ConnectivityStore {
  /** In precedence order: the first class that matches a device is the device's. */
  list(options?: { counts?: boolean }): Promise<StoredConnectivityClass[]>;
  get(name: string): Promise<StoredConnectivityClass | undefined>;
  /** Creates or replaces the class and resolves every device again, in one transaction with its event. */
  set(
    c: ConnectivityClass,
    actor: string,
    ctx: TimeContext,
  ): Promise<{ created: boolean; class: StoredConnectivityClass }>;
  /** False when there was no such class; its devices go back to the server-wide thresholds or another class. */
  remove(name: string, actor: string, ctx: TimeContext): Promise<boolean>;
  /**
   * Moves the devices whose class changed (their tags, hardware or groups did) to the class they match now;
   * a read of the fleet and a write of only those devices. Returns how many moved.
   */
  resolve(ctx: TimeContext): Promise<number>;
}
