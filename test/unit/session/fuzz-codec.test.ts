/**
 * Session frames from a stranger, in process: random and mutated frames (test/fuzz/
 * session-frames.ts, built by hand from docs/session.md) through decodeMessage and, for
 * DATA_BATCH, decodeDataBatch. Nothing may throw but a PeerlinkError with a wire-error code,
 * no frame may take long (a loop), and memory stays bounded. A million frames (about 7 s here);
 * PEERLINK_FUZZ_FRAMES changes the count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessageBuffer } from '../../../src/session/protocol/codec.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { fuzzCount, fuzzFrame, Rng, type FuzzKind } from '../../fuzz/session-frames.js';

const N = fuzzCount(1_000_000);
const WIRE_CODES = new Set(['ERR_MALFORMED_FRAME', 'ERR_PROTOCOL', 'ERR_MESSAGE_TOO_LARGE']);

test(`the session codec survives ${N} random and mutated frames`, () => {
  const heapBefore = process.memoryUsage().heapUsed;
  const counts = new Map<FuzzKind, { ok: number; refused: number }>();
  const codes = new Map<string, number>();
  const rng = new Rng(0x5eed);
  let slowest = 0;
  for (let i = 0; i < N; i++) {
    const [frame, kind] = fuzzFrame(rng);
    const c = counts.get(kind) ?? { ok: 0, refused: 0 };
    counts.set(kind, c);
    const t = performance.now();
    try {
      const msg = decodeMessage(frame, { maxDataSize: 4096 });
      c.ok++;
      // whatever decodes (but unknown types, which are ignored) re-encodes to a frame that decodes alike
      if (msg.type !== 'unknown' && msg.type !== 'extension') {
        assert.deepEqual(decodeMessage(encodeMessageBuffer(msg), { maxDataSize: 4096 }), msg, `${kind}: not stable through encode/decode: ${frame.toString('hex')}`);
      }
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(isPeerlinkError(err) && WIRE_CODES.has(err.code), `${kind}: unexpected ${String(err)} for ${frame.toString('hex')}`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      c.refused++;
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  // both paths ran for every kind that can go either way
  assert.ok((counts.get('valid')?.ok ?? 0) > N / 10, 'valid frames decode');
  for (const kind of ['random', 'flip', 'truncate', 'extend', 'length'] as const) {
    assert.ok((counts.get(kind)?.refused ?? 0) > 0, `${kind}: nothing refused`);
  }
  // Only a pathological frame (e.g. quadratic decoding) could take this long; a GC pause or a
  // descheduled process on a loaded machine takes a few hundred ms (seen: 250 ms exceeded).
  assert.ok(slowest < 2000, `slowest frame took ${slowest} ms`);
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 128 * 1024 * 1024, `heap grew ${grown} bytes`);
});
