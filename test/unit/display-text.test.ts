// Invisible characters (hostile-peers item 9): refused in resource and display names, in a
// HELLO's display name, and escaped wherever the CLI prints a name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeForDisplay, findInvisible } from '../../src/display-text.js';
import { resourceNameProblem, validateResourceName } from '../../src/session/resource-name.js';
import { PeerID, validateDisplayName } from '../../src/session/peer-id.js';
import { decodeMessage } from '../../src/session/protocol/codec.js';
import { printable } from '../../src/cli/progress.js';
import { isPeerlinkError } from '../../src/errors.js';

const INVISIBLE = ['\u200B', '\u2028', '\u2029', '\uFEFF', '\u00AD', '\u200C', '\u2060', '\u180E', '\u3164', '\u{E0041}', '\u200D'];

test('findInvisible: format, separator and filler characters; not ordinary text or an emoji ZWJ sequence', () => {
  for (const c of INVISIBLE) assert.equal(findInvisible(`a${c}b`), c, `U+${c.codePointAt(0)!.toString(16)}`);
  for (const ok of ['report.pdf', 'Bob’s iPhone', 'naïve café', '日本語', '👩‍💻 dev', 'tab\u00A0nbsp']) assert.equal(findInvisible(ok), undefined, ok);
});

test('escapeForDisplay: invisible characters become visible escapes; other text is unchanged', () => {
  assert.equal(escapeForDisplay('a\u200Bb\u2028c\uFEFFd\u00ADe'), 'a\\u200bb\\u2028c\\ufeffd\\u00ade');
  assert.equal(escapeForDisplay('evil\u202Etxt.exe'), 'evil\\u202etxt.exe');
  assert.equal(escapeForDisplay('tag\u{E0041}'), 'tag\\u{e0041}');
  assert.equal(escapeForDisplay('👩‍💻 ok'), '👩‍💻 ok');
  assert.equal(printable('x\u200By\tz'), 'x\\u200by\tz');
});

test('resource names with invisible characters are refused with ERR_RESOURCE_NAME', () => {
  for (const c of INVISIBLE) {
    const name = `photo${c}.jpg`;
    assert.match(resourceNameProblem(name) ?? '', /invisible character U\+/, name);
    assert.throws(() => validateResourceName(name), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME') && !/[\u200B\u2028\uFEFF\u00AD]/u.test((e as Error).message));
  }
  assert.equal(resourceNameProblem('👩‍💻.png'), null);
});

test('display names with invisible characters are refused (ours and a HELLO\'s)', () => {
  for (const c of ['\u200B', '\u2028', '\uFEFF', '\u00AD']) {
    assert.throws(() => validateDisplayName(`Al${c}ice`), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    assert.throws(() => PeerID.generate(`Al${c}ice`), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  }
  assert.equal(validateDisplayName('Alice 👩‍💻'), 'Alice 👩‍💻');
  // A HELLO whose display name holds U+200B is malformed input, not a peer.
  const name = Buffer.from('Al\u200Bice', 'utf8');
  const fixed = Buffer.alloc(1 + 1 + 1 + 16 + 16 + 4 + 4 + 2 + 4);
  fixed[0] = 0x01;
  fixed[1] = 1;
  const hello = Buffer.concat([fixed, Buffer.from([name.length]), name, Buffer.from([0])]);
  const plain = Buffer.concat([fixed, Buffer.from([5]), Buffer.from('Alice'), Buffer.from([0])]);
  assert.equal((decodeMessage(plain, { maxDataSize: 1024 }) as { displayName: string }).displayName, 'Alice');
  assert.throws(() => decodeMessage(hello, { maxDataSize: 1024 }), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
});
