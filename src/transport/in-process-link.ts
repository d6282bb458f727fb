/**
 * Two ends of one connection inside the process, for the bridge to talk to the embedded broker without a
 * socket: nothing outside the process can reach it, so the broker knows the bridge by its end of the link
 * and needs no bridge password, and the plain TCP listener can stay closed (`deviceAuth: 'mtls'`).
 */
import { Duplex } from 'node:stream';

export function inProcessLink(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const end = (other: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        other().push(chunk);
        done();
      },
      final(done) {
        other().push(null);
        done();
      },
      destroy(error, done) {
        other().destroy();
        done(error);
      },
    });
  ends.push(
    end(() => ends[1]!),
    end(() => ends[0]!),
  );
  return [ends[0]!, ends[1]!];
}
