/**
 * WAL checkpoints copy the log back into the database file and fsync it: tens of milliseconds that would
 * stall every request if they ran on the event loop, as SQLite's automatic checkpoints do. A worker thread
 * with its own connection runs them instead, while the server's connection only appends to the log.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const checkpoint = () => {
  try {
    // PASSIVE never blocks the writer: once the log is fully copied, the writer starts it over from the top.
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage(String(error));
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;

  constructor(file: string, onError: (message: string) => void, intervalMs = 1_000) {
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        file,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        intervalMs,
      },
    });
    this.worker.on('message', onError);
    this.worker.on('error', (error) => onError(String(error)));
    this.worker.unref();
  }

  /** Runs a last checkpoint and stops the worker. */
  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.ref(); // keep the process alive until the last checkpoint is done
    this.worker.postMessage('stop');
    await exited;
  }
}
