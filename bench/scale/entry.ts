/**
 * The library as an app imports it: the package's entry point, dist/src/bundle.js (one file,
 * written by `node scripts/bundle.mjs`; docs/memory.md "One file"). PEERLINK_BENCH_ENTRY=files
 * imports the ~150 files of dist/src instead (dist/src/index.js), as before the bundle.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Library = typeof import('../../src/index.js');

export const entryKind: 'bundle' | 'files' = process.env['PEERLINK_BENCH_ENTRY'] === 'files' ? 'files' : 'bundle';

export async function importLibrary(): Promise<Library> {
  if (entryKind === 'files') return import('../../src/index.js');
  const bundle = new URL('../../src/bundle.js', import.meta.url);
  const file = fileURLToPath(bundle);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`node scripts/bundle.mjs\` (or PEERLINK_BENCH_ENTRY=files)`);
  // tsc alone does not rewrite the bundle: measuring a stale one would measure old code.
  const built = statSync(file).mtimeMs;
  const dir = fileURLToPath(new URL('../../src/', import.meta.url));
  const newer = (readdirSync(dir, { recursive: true }) as string[]).find((f) => f.endsWith('.js') && f !== 'bundle.js' && statSync(join(dir, f)).mtimeMs > built);
  if (newer) throw new Error(`${file} is older than dist/src/${newer}: run \`node scripts/bundle.mjs\` (or PEERLINK_BENCH_ENTRY=files)`);
  return (await import(bundle.href)) as Library;
}
