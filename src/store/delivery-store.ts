/** The storage port's part for agentless delivery settings (docs/agentless.md). */
import type { Delivery } from '../core/delivery.js';

export interface DeviceDelivery {
  deviceId: string;
  delivery: Delivery;
  updatedAt: number;
}

export interface DeliveryStore {
  /** Sets (or replaces) a device's delivery with its event; DEVICE_NOT_FOUND for unknown or decommissioned ones. */
  set(deviceId: string, delivery: Delivery, at: number, actor: string): Promise<DeviceDelivery>;
  /** Removes it (the device is then expected to run an agent); false when it had none. */
  remove(deviceId: string, at: number, actor: string): Promise<boolean>;
  get(deviceId: string): Promise<DeviceDelivery | undefined>;
  /** Agentless devices, by id, of devices not decommissioned: what the delivery worker serves. */
  list(options: { after?: string; limit: number }): Promise<DeviceDelivery[]>;
}
