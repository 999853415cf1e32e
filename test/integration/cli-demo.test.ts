// `npm run demo` smoke test: the compiled demo, with no TTY, inside a fresh loopback-only
// namespace (the demo uses `lo`; the namespace keeps its mDNS away from other tests).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked } from '../harness/proc.js';
import { inCI, requires, skipUnless } from '../harness/prereq.js';
import { REPO_ROOT } from '../harness/paths.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

test('the demo runs to the end, verifies the file digest and exits 0', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await createLab({ hosts: 0, tag: 'demo' });
  const ns = await lab.addLoopbackNamespace('demo');
  const r = await lab.exec(ns, process.execPath, [`${REPO_ROOT}/dist/examples/demo.js`], { check: false, timeoutMs: 90_000, env: { ...process.env, NO_COLOR: '1' } });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, out);
  assert.match(r.stdout, /SHA-256 verified: [0-9a-f]{64}/, out);
  assert.match(r.stdout, /every peer has 2 connected peers/, out);
  assert.match(r.stdout, /all three peers exited cleanly/, out);
  assert.ok(!r.stdout.includes('\u001b['), 'no escape sequences without a TTY');
});

test('with a terminal: colours and a progress bar, still exit 0', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  if (spawnSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' }).status !== 0) {
    const why = 'util-linux `script` (to give the demo a pseudo-terminal) is not installed (apt-get install bsdutils)';
    if (inCI) throw new Error(`${why} — .ci/run must install it`);
    t.skip(why);
    return;
  }
  lab ??= await createLab({ hosts: 0, tag: 'demo' });
  const ns = await lab.addLoopbackNamespace('demotty');
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm-256color' };
  delete env.NO_COLOR;
  const r = await lab.exec(ns, 'script', ['-qec', `${process.execPath} ${REPO_ROOT}/dist/examples/demo.js`, '/dev/null'], { check: false, timeoutMs: 90_000, env });
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /SHA-256 verified: [0-9a-f]{64}/);
  assert.ok(r.stdout.includes('\u001b[32m'), 'colours on a terminal');
  assert.match(r.stdout, /█/, 'a progress bar');
});
