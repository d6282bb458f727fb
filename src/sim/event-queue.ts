/**
 * The simulator's agenda: a binary min-heap of (time, device, kind) in typed arrays, so a million pending
 * device events cost 17 bytes each and no objects. A device's stale events are skipped by a generation
 * number the caller keeps per device.
 */
export class EventQueue {
  private times = new Float64Array(1024);
  private devices = new Int32Array(1024);
  private metas = new Uint32Array(1024);
  size = 0;

  push(time: number, device: number, meta: number): void {
    if (this.size === this.times.length) this.grow();
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= time) break;
      this.move(parent, i);
      i = parent;
    }
    this.times[i] = time;
    this.devices[i] = device;
    this.metas[i] = meta;
  }

  peekTime(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.times[0]!;
  }

  /** Removes the earliest event; returns [time, device, meta] in `out`. */
  pop(out: [number, number, number]): void {
    out[0] = this.times[0]!;
    out[1] = this.devices[0]!;
    out[2] = this.metas[0]!;
    const last = --this.size;
    if (last === 0) return;
    const time = this.times[last]!;
    const device = this.devices[last]!;
    const meta = this.metas[last]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.times[r]! < this.times[l]! ? r : l;
      if (this.times[c]! >= time) break;
      this.move(c, i);
      i = c;
    }
    this.times[i] = time;
    this.devices[i] = device;
    this.metas[i] = meta;
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.devices[to] = this.devices[from]!;
    this.metas[to] = this.metas[from]!;
  }

  private grow(): void {
    const n = this.times.length * 2;
    const t = new Float64Array(n);
    t.set(this.times);
    const d = new Int32Array(n);
    d.set(this.devices);
    const m = new Uint32Array(n);
    m.set(this.metas);
    this.times = t;
    this.devices = d;
    this.metas = m;
  }
}
