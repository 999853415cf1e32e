// Folder resume (resource-folder-resume.ts, resource-wire.ts): what a hostile *receiver* can
// put in its accept — held ranges naming files outside the folder, out of order or overlapping,
// too many of them, a partial file it claims more of than the file has — is refused by the
// sender (ERR_PROTOCOL) before it reads anything; an honest offer is planned against the
// sender's own files only. The receiver-side checks are in test/adversarial/resource-folder-resume.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { tempDir } from '../../harness/loopback.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { walkFolder } from '../../../src/session/resource-folder-manifest.js';
import { heldProof, planFolderResume, toRanges } from '../../../src/session/resource-folder-resume.js';
import { parseFrame } from '../../../src/session/resource-wire.js';
import { MiB } from '../../../src/session/resource-prefix.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const accept = (folder: unknown): Buffer => Buffer.from(JSON.stringify({ type: 'accept', offset: 0, folder }));

test('a folder accept: ranges must be ascending, disjoint, at most 256; the partial offer is checked like a file resume offer', () => {
  const bad: unknown[] = [
    { held: [[2, 1]] },
    { held: [[0, 2], [1, 3]] },
    { held: [[0, 2], [2, 3]] },
    { held: [[-1, 2]] },
    { held: [[0, 1.5]] },
    { held: Array.from({ length: 257 }, (_, i) => [i * 2, i * 2 + 1]) },
    { held: 'all' },
    { held: [], partial: { file: 0, have: 5 * MiB, block: 4 * MiB, digests: ['a'.repeat(64)] } },
    { held: [], partial: { file: 0, have: 5, block: 3, digests: ['a'.repeat(64)] } },
    { held: [], partial: { file: -1, have: 0, block: 4 * MiB, digests: [] } },
  ];
  for (const f of bad) assert.throws(() => parseFrame(accept(f)), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_PROTOCOL', JSON.stringify(f).slice(0, 80));
  assert.deepEqual(parseFrame(accept({ held: [[0, 2], [3, 4]] })), { type: 'accept', offset: 0, folder: { held: [[0, 2], [3, 4]] } });
  assert.deepEqual(toRanges([4, 0, 1, 2, 7]), [[0, 3], [4, 5], [7, 8]]);
});

test('the sender refuses held ranges or a partial file outside its folder, and a prefix longer than its file; an honest offer is proved from its own files', async (t) => {
  const root = join(await tempDir(t, 'pl-foldres-unit-'), 'f');
  await mkdir(join(root, 'd'), { recursive: true });
  const a = randomBytes(1000);
  const big = randomBytes(5 * MiB);
  await writeFile(join(root, 'd', 'a.bin'), a);
  await writeFile(join(root, 'd', 'b.bin'), big);
  const manifest = await walkFolder(root);
  const signal = new AbortController().signal;
  const refused = async (offer: Parameters<typeof planFolderResume>[2], what: string): Promise<void> => {
    await assert.rejects(planFolderResume(root, manifest, offer, signal), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_PROTOCOL', what);
  };
  await refused({ held: [[0, 3]] }, 'files past the last');
  await refused({ held: [[5, 9]] }, 'files past the last, only');
  await refused({ held: [], partial: { file: 2, have: 4 * MiB, block: 4 * MiB, digests: ['0'.repeat(64)] } }, 'a partial file past the last');
  await refused({ held: [[0, 1]], partial: { file: 0, have: 100, block: 4 * MiB, digests: ['0'.repeat(64)] } }, 'a partial file it also holds');
  await refused({ held: [], partial: { file: 0, have: 4 * MiB, block: 4 * MiB, digests: ['0'.repeat(64)] } }, 'more of a file than it has');
  const plan = await planFolderResume(root, manifest, { held: [[0, 1]], partial: { file: 1, have: 4 * MiB + 10, block: 4 * MiB, digests: [sha(big.subarray(0, 4 * MiB)), 'f'.repeat(64)] } }, signal);
  assert.equal(plan.proof, heldProof([sha(a)]));
  assert.deepEqual([...plan.skip], [0]);
  assert.equal(plan.file?.index, 1);
  assert.equal(plan.file?.offset, 4 * MiB, 'continues from the first block that differs');
  assert.equal(plan.file?.hash.copy().digest('hex'), sha(big.subarray(0, 4 * MiB)));
  assert.equal(plan.kept, a.length + 4 * MiB);
});
