/**
 * The library as an app imports it: the package's entry point, dist/src/bundle.js (one file,
 * written by `node scripts/bundle.mjs`; docs/memory.md "One file"). PEERLINK_BENCH_ENTRY=files
 * imports the ~150 files of dist/src instead (dist/src/index.js), as before the bundle.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Library = typeof import('../../src/index.js');

export const entryKind: 'bundle' | 'files' = process.env['PEERLINK_BENCH_ENTRY'] === 'files' ? 'files' : 'bundle';

export async function importLibrary(): Promise<Library> {
  if (entryKind === 'files') return import('../../src/index.js');
  const bundle = new URL('../../src/bundle.js', import.meta.url);
  if (!existsSync(fileURLToPath(bundle))) throw new Error(`${fileURLToPath(bundle)} is missing: run \`node scripts/bundle.mjs\` (or PEERLINK_BENCH_ENTRY=files)`);
  return (await import(bundle.href)) as Library;
}
