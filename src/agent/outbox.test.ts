import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deliver, Outbox, type Report, type SendOutcome } from './outbox.js';

const outboxPath = async () => join(await mkdtemp(join(tmpdir(), 'fleetd-outbox-')), 'outbox.json');
const brief = (r: Report) => `${r.update_id}#${r.seq}:${r.state}`;

describe('outbox', () => {
  it('numbers reports per update and keeps them in order across reopening', async () => {
    const path = await outboxPath();
    const box = await Outbox.open(path);
    await box.append('u1', 'notified');
    await box.append('u1', 'downloading', { progress: 10 });
    await box.append('u2', 'notified', { serverSeq: 7 }); // the server had seen seq 7 already
    await box.append('u1', 'failed', { error: 'sha256 mismatch' });
    const again = await Outbox.open(path); // a new process
    expect(again.pending().map(brief)).toEqual([
      'u1#1:notified',
      'u1#2:downloading',
      'u2#8:notified',
      'u1#3:failed',
    ]);
    expect(again.pending()[3]).toMatchObject({ progress: null, error: 'sha256 mismatch' });
    expect(again.mark('u1')).toEqual({ seq: 3, state: 'failed' });
  });

  it('keeps counting after acknowledged reports are gone', async () => {
    const path = await outboxPath();
    const box = await Outbox.open(path);
    await box.append('u1', 'notified');
    await box.append('u1', 'downloading');
    await box.ack('u1', 2);
    expect(box.pending()).toEqual([]);
    const again = await Outbox.open(path);
    expect((await again.append('u1', 'installing')).seq).toBe(3);
  });

  it('ignores the temp file of a write cut short by a kill', async () => {
    const path = await outboxPath();
    const box = await Outbox.open(path);
    await box.append('u1', 'notified');
    await writeFile(`${path.replace(/outbox\.json$/, '.outbox.json.dead.tmp')}`, '{"reports": [');
    expect((await Outbox.open(path)).pending().map(brief)).toEqual(['u1#1:notified']);
  });

  it('drops the reports of a cancelled update and remembers it', async () => {
    const box = await Outbox.open(await outboxPath());
    await box.append('u1', 'notified');
    await box.append('u2', 'notified');
    await box.cancel('u1');
    expect(box.pending().map(brief)).toEqual(['u2#1:notified']);
    expect(box.mark('u1')).toEqual({ seq: 1, state: 'cancelled' });
  });

  it('serialises concurrent appends without losing or reusing a seq', async () => {
    const box = await Outbox.open(await outboxPath());
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => box.append('u', 'downloading', { progress: i * 10 })),
    );
    expect(box.pending().map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
});

describe('delivery', () => {
  async function filled() {
    const box = await Outbox.open(await outboxPath());
    await box.append('u1', 'notified');
    await box.append('u1', 'downloading', { progress: 0 });
    await box.append('u1', 'installing');
    return box;
  }

  it('delivers in order and stops at the first failure, to resume there', async () => {
    const box = await filled();
    const sent: string[] = [];
    let up = false;
    const send = async (r: Report): Promise<SendOutcome> => {
      if (!up && r.seq === 2) return { kind: 'retry', reason: 'HTTP 503' };
      sent.push(brief(r));
      return { kind: 'answered', accepted: true, state: r.state };
    };
    const first = await deliver(box, send, () => {});
    expect(first).toMatchObject({ ok: false, reason: 'HTTP 503' });
    expect(box.pending().map(brief)).toEqual(['u1#2:downloading', 'u1#3:installing']);
    up = true;
    expect((await deliver(box, send, () => {})).ok).toBe(true);
    expect(sent).toEqual(['u1#1:notified', 'u1#2:downloading', 'u1#3:installing']);
    expect(box.pending()).toEqual([]);
  });

  it('treats accepted:false as delivered and drops a refused report with a log line', async () => {
    const box = await filled();
    const refused: string[] = [];
    const result = await deliver(
      box,
      async (r) =>
        r.seq === 2
          ? { kind: 'refused', reason: 'TRANSITION_NOT_ALLOWED' }
          : { kind: 'answered', accepted: false, state: 'installing' },
      (r, reason) => refused.push(`${brief(r)} ${reason}`),
    );
    expect(result.ok).toBe(true);
    expect(refused).toEqual(['u1#2:downloading TRANSITION_NOT_ALLOWED']);
    expect(box.pending()).toEqual([]);
  });

  it('reports the updates the server answered cancelled for', async () => {
    const box = await filled();
    const calls: number[] = [];
    const result = await deliver(
      box,
      async (r) => {
        calls.push(r.seq);
        return { kind: 'answered', accepted: true, state: 'cancelled' };
      },
      () => {},
    );
    expect(result.cancelled).toEqual(['u1']);
    expect(calls).toEqual([1]); // the rest of a cancelled update's reports are not sent
  });
});
