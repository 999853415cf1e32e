/**
 * The library as an app imports it: the package's entry point, dist/src/bundle.js (one file,
 * written by `node scripts/bundle.mjs`; docs/memory.md "One file"). PEERLINK_BENCH_ENTRY=files
 * imports the ~150 files of dist/src instead (dist/src/index.js), as before the bundle.
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Library = typeof import('../../src/index.js');

export const entryKind: 'bundle' | 'files' = process.env['PEERLINK_BENCH_ENTRY'] === 'files' ? 'files' : 'bundle';

export async function importLibrary(): Promise<Library> {
  if (entryKind === 'files') return import('../../src/index.js');
  const bundle = new URL('../../src/bundle.js', import.meta.url);
  const file = fileURLToPath(bundle);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`node scripts/bundle.mjs\` (or PEERLINK_BENCH_ENTRY=files)`);
  // tsc alone does not rewrite the bundle: measuring a stale one would measure old code. tsc
  // rewrites its build info (tsconfig.json tsBuildInfoFile) whenever it emits, so one stat says it.
  // Not a walk of dist/src: stat-ing its ~300 files and joining their paths in the measured
  // process made node:path's normalizeString hot enough for Turbofan, which paged ~6 MiB of the
  // compiler's code from the node binary into every figure after "bare" (docs/memory.md).
  const info = fileURLToPath(new URL('../../.tsbuildinfo', import.meta.url));
  if (existsSync(info) && statSync(info).mtimeMs > statSync(file).mtimeMs) throw new Error(`${file} is older than the last tsc build (${info}): run \`node scripts/bundle.mjs\` (or PEERLINK_BENCH_ENTRY=files)`);
  return (await import(bundle.href)) as Library;
}
