/**
 * Admission: whether a device is part of the fleet. A device that asks to join without an enrollment token on a
 * server in approval mode waits as `pending` until an operator accepts or rejects it; every other device is
 * `accepted`. Only accepted devices heartbeat, are planned into rollouts and count in the fleet's statistics.
 */
export const DEVICE_ADMISSIONS = ['accepted', 'pending', 'rejected'] as const;
export type DeviceAdmission = (typeof DEVICE_ADMISSIONS)[number];

export type AdmissionDecision = 'accept' | 'reject';

/**
 * The legal moves, as data: single and bulk decisions take their from-states from here. A rejected device may
 * still be accepted (a mistake undone); an accepted one is taken out of the fleet by decommissioning, not here.
 */
export const ADMISSION_MOVES: Record<
  AdmissionDecision,
  { from: readonly DeviceAdmission[]; to: DeviceAdmission; event: string }
> = {
  accept: { from: ['pending', 'rejected'], to: 'accepted', event: 'device.accepted' },
  reject: { from: ['pending'], to: 'rejected', event: 'device.rejected' },
};
