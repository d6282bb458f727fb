/**
 * Factory CAs in shared SQL: trusting and untrusting one (each with its event), the live list every replica
 * polls to follow the set, and just-in-time registration of a device by a certificate one of them issued.
 */
import type { Kysely } from 'kysely';
import { FleetError } from '../../core/errors.js';
import { newDeviceRow, recordColumns } from '../device-row.js';
import type { Database, TrustedCasTable } from '../schema.js';
import type { FactoryRegistration, NewTrustedCa, TimeContext, TrustedCa, TrustedCaStore } from '../store.js';
import { hasLiveCertificate, insertCertificate } from './certificates.js';
import { replaceTags } from './devices.js';
import { insertEvents } from './events.js';

const toTrustedCa = (r: TrustedCasTable): TrustedCa => ({
  name: r.name,
  certificatePem: r.certificate_pem,
  fingerprint: r.fingerprint,
  tags: JSON.parse(r.tags) as Record<string, string>,
  hardwareFrom: r.hardware_from,
  approve: Number(r.approve) === 1,
  addedAt: Number(r.added_at),
  removedAt: r.removed_at === null ? null : Number(r.removed_at),
});

/** What an event says of a CA: its name and fingerprint, never more than a listing shows. */
const caData = (ca: TrustedCa) => ({
  name: ca.name,
  fingerprint: ca.fingerprint,
  tags: ca.tags,
  hardware_from: ca.hardwareFrom,
  approve: ca.approve,
});

/** A primary-key or unique violation, as either database reports it. */
function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT'));
}

export class SqlTrustedCas implements TrustedCaStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(ca: NewTrustedCa, actor: string): Promise<TrustedCa> {
    const added: TrustedCa = { ...ca, removedAt: null };
    try {
      await this.db.transaction().execute(async (trx) => {
        const clash = await trx
          .selectFrom('trusted_cas')
          .select(['name', 'fingerprint'])
          .where('removed_at', 'is', null)
          .where((eb) => eb.or([eb('name', '=', ca.name), eb('fingerprint', '=', ca.fingerprint)]))
          .executeTakeFirst();
        if (clash) {
          throw new FleetError(
            'CONFLICT',
            clash.name === ca.name
              ? `a CA named ${ca.name} is trusted already; untrust it first or choose another --name`
              : `this CA certificate is trusted already, as ${clash.name}`,
          );
        }
        await trx
          .insertInto('trusted_cas')
          .values({
            name: ca.name,
            certificate_pem: ca.certificatePem,
            fingerprint: ca.fingerprint,
            tags: JSON.stringify(ca.tags),
            hardware_from: ca.hardwareFrom,
            approve: ca.approve ? 1 : 0,
            added_at: ca.addedAt,
            removed_at: null,
          })
          .execute();
        await insertEvents(trx, [
          {
            at: ca.addedAt,
            type: 'ca.trusted',
            deviceId: null,
            rolloutId: null,
            actor,
            reason: null,
            data: caData(added),
          },
        ]);
      });
    } catch (error) {
      // Another replica trusted the same name at the same moment.
      if (isUniqueViolation(error)) {
        throw new FleetError('CONFLICT', `a CA named ${ca.name} is trusted already`, undefined, {
          cause: error,
        });
      }
      throw error;
    }
    return added;
  }

  async list(): Promise<TrustedCa[]> {
    const rows = await this.db
      .selectFrom('trusted_cas')
      .selectAll()
      .where('removed_at', 'is', null)
      .orderBy('added_at')
      .orderBy('name')
      .execute();
    return rows.map(toTrustedCa);
  }

  remove(name: string, at: number, actor: string): Promise<TrustedCa> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('trusted_cas')
        .selectAll()
        .where('name', '=', name)
        .where('removed_at', 'is', null)
        .executeTakeFirst();
      if (!row) throw new FleetError('NOT_FOUND', `no trusted CA is named ${name} (fleetd ca list)`);
      await trx
        .updateTable('trusted_cas')
        .set({ removed_at: at })
        .where('name', '=', name)
        .where('removed_at', 'is', null)
        .execute();
      const removed = { ...toTrustedCa(row), removedAt: at };
      await insertEvents(trx, [
        {
          at,
          type: 'ca.untrusted',
          deviceId: null,
          rolloutId: null,
          actor,
          reason: null,
          data: caData(removed),
        },
      ]);
      return removed;
    });
  }

  async registerDevice(r: FactoryRegistration, ctx: TimeContext): Promise<string | null> {
    const id = r.device.id;
    try {
      return await this.db.transaction().execute(async (trx) => {
        const known = await trx
          .selectFrom('device_certificates')
          .select('serial')
          .where('fingerprint', '=', r.certificate.fingerprint)
          .executeTakeFirst();
        if (known) return null;
        const existing = await trx.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
        const actor = `ca:${r.caName}`;
        if (existing) {
          if (existing.decommissioned_at !== null) {
            throw new FleetError('DEVICE_DECOMMISSIONED', `device ${id} is decommissioned`);
          }
          if (existing.credential_hash !== null || (await hasLiveCertificate(trx, id))) {
            throw new FleetError(
              'DEVICE_EXISTS',
              `device ${id} is already enrolled with another credential or certificate; a factory ` +
                'certificate naming it does not take it over',
            );
          }
          // A pre-registered (imported) device: registry facts win, the CA's tags fill in what is missing.
          const tags = { ...(r.device.tags ?? {}), ...(JSON.parse(existing.tags) as Record<string, string>) };
          const fill = recordColumns({
            id,
            tags,
            ...(existing.hardware_type === null ? { hardwareType: r.device.hardwareType ?? null } : {}),
          });
          await trx
            .updateTable('devices')
            .set({ ...fill, updated_at: ctx.now })
            .where('id', '=', id)
            .execute();
          await replaceTags(trx, [id], new Map([[id, tags]]));
        } else {
          const row = newDeviceRow(r.device, ctx);
          await trx.insertInto('devices').values(row).execute();
          await replaceTags(trx, [id], new Map([[id, r.device.tags ?? {}]]));
        }
        await insertCertificate(trx, r.certificate, actor);
        await insertEvents(trx, [
          {
            at: ctx.now,
            type: 'device.registered_by_factory_certificate',
            deviceId: id,
            rolloutId: null,
            actor,
            reason: existing ? 'claimed a registered device' : 'self-registration',
            data: {
              ca: r.caName,
              fingerprint: r.certificate.fingerprint,
              hardware_type: r.device.hardwareType ?? null,
            },
          },
        ]);
        return id;
      });
    } catch (error) {
      // The same device's first two requests at once: the other one registered it.
      if (isUniqueViolation(error)) return null;
      throw error;
    }
  }
}
