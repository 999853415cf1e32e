/**
 * docs/wide-area.md shows the zone file and the BIND / Knot configuration that
 * test/harness/dns-zone.ts generates, which is what the wide-area tests start the servers
 * with: the documented setup is the tested one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindConf, knotConf, zoneFile, type ZoneSpec } from '../../harness/dns-zone.js';
import { REPO_ROOT } from '../../harness/paths.js';

const DOC_SPEC: ZoneSpec = { zone: 'example.com', keyName: 'peerlink-key', secret: 'SECRET-FROM-peerlink-key.key', address: '192.0.2.53', port: 53, dir: '/var/lib/peerlink-dns' };

test('docs/wide-area.md shows exactly the zone file, named.conf and knot.conf the tests use', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'wide-area.md'), 'utf8');
  for (const [what, text] of [
    ['zone file', zoneFile(DOC_SPEC)],
    ['named.conf', bindConf(DOC_SPEC)],
    ['knot.conf', knotConf(DOC_SPEC)],
  ] as const) {
    assert.ok(doc.includes('```\n' + text + '```'), `docs/wide-area.md does not show the generated ${what}:\n${text}`);
  }
});
