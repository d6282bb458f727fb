/**
 * Group commit: requests arriving in the same turn of the event loop are written as one batch (one
 * transaction where the store allows), and each is answered only after that batch is written. Throughput of
 * a batch, durability of a single write: nothing is acknowledged before it is stored.
 *
 * Batch isolation: when a batch's write fails, nothing of it was stored (it was one transaction), so each of
 * its items is written again alone, in order. One item the database refuses (a NUL byte, a number beyond its
 * column) then fails alone with its own error, and the others in its batch are stored and answered as usual.
 */
interface Waiting<Item, Result> {
  item: Item;
  resolve(result: Result): void;
  reject(error: unknown): void;
}

export class GroupCommit<Item, Result> {
  private queue: Array<Waiting<Item, Result>> = [];
  private scheduled = false;

  constructor(
    /** Writes a batch all or nothing; answers one result per item, in order. */
    private readonly write: (items: Item[]) => Promise<Result[]>,
    private readonly maxBatch = 1_000,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        void this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      const results = await this.write(batch.map((w) => w.item));
      batch.forEach((w, i) => {
        w.resolve(results[i]!);
      });
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // In order, as the batch would have written them: a device's second heartbeat still sees its first.
      for (const w of batch) await this.writeAlone(w);
    }
  }

  private async writeAlone(w: Waiting<Item, Result>): Promise<void> {
    try {
      const [result] = await this.write([w.item]);
      w.resolve(result!);
    } catch (error) {
      w.reject(error);
    }
  }
}
