import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPeerlinkError } from '../../../src/errors.js';
import { MAX_RESOURCE_NAME_BYTES, numberedName, resourceNameProblem, validateResourceName } from '../../../src/session/resource-name.js';

const hostile: Array<[string, unknown]> = [
  ['empty', ''],
  ['blank', '   '],
  ['dot', '.'],
  ['dot-dot', '..'],
  ['parent traversal', '../etc/passwd'],
  ['nested traversal', 'a/../../b'],
  ['absolute path', '/etc/passwd'],
  ['windows absolute', 'C:\\Windows\\win.ini'],
  ['backslash traversal', '..\\..\\boot.ini'],
  ['subdirectory', 'dir/file.txt'],
  ['NUL byte', 'a\u0000b.txt'],
  ['newline', 'line\nbreak.txt'],
  ['escape sequence', '\u001b[31mred.txt'],
  ['DEL', 'del\u007f.txt'],
  ['C1 control', 'c1\u0085.txt'],
  ['bidi override', 'evil\u202etxt.exe'],
  ['device CON', 'CON'],
  ['device nul with extension', 'nul.txt'],
  ['device COM1 lower case', 'com1'],
  ['device LPT9', 'LPT9.log'],
  ['device with trailing space', 'AUX .txt'],
  ['device COM superscript', 'COM¹'],
  ['overlong ASCII', 'a'.repeat(MAX_RESOURCE_NAME_BYTES + 1)],
  ['overlong UTF-8', 'é'.repeat(128)],
  ['NTFS stream', 'file.txt:secret'],
  ['wildcard', 'what?.txt'],
  ['trailing dot', 'file.txt.'],
  ['trailing space', 'file.txt '],
  ['hidden file', '.bashrc'],
  ['lone surrogate', 'a\ud800b'],
  ['not a string', 42],
];

for (const [label, name] of hostile) {
  test(`resource name refused: ${label}`, () => {
    assert.notEqual(resourceNameProblem(name), null);
    assert.throws(() => validateResourceName(name), (err: unknown) => isPeerlinkError(err, 'ERR_RESOURCE_NAME'));
  });
}

const fine = ['report.pdf', 'photo 2024-01-01.jpg', 'résumé.txt', '日本語のファイル.txt', 'a', 'CONSOLE.txt', 'com10', 'x'.repeat(255), '😀.png', 'archive.tar.gz', 'name with (parens).doc'];
for (const name of fine) {
  test(`resource name accepted: ${JSON.stringify(name.length > 20 ? name.slice(0, 20) + '…' : name)}`, () => {
    assert.equal(resourceNameProblem(name), null);
    assert.equal(validateResourceName(name), name);
  });
}

test('the error message quotes the name safely', () => {
  try {
    validateResourceName('bad\u001b[2Jname/x');
    assert.fail('should throw');
  } catch (err) {
    assert.ok(isPeerlinkError(err, 'ERR_RESOURCE_NAME'));
    assert.ok(!err.message.includes('\u001b'), 'no raw escape in the message');
  }
});

test('numbered names keep the extension', () => {
  assert.equal(numberedName('file.txt', 0), 'file.txt');
  assert.equal(numberedName('file.txt', 1), 'file (1).txt');
  assert.equal(numberedName('file', 2), 'file (2)');
  assert.equal(numberedName('archive.tar.gz', 1), 'archive (1).tar.gz');
  assert.equal(numberedName('a.b.c', 3), 'a.b (3).c');
});

test('numbered names stay within the length limit', () => {
  const long = `${'é'.repeat(120)}.txt`; // 244 bytes
  const n = numberedName(long, 12);
  assert.ok(Buffer.byteLength(n) <= MAX_RESOURCE_NAME_BYTES);
  assert.ok(n.endsWith(' (12).txt'));
  assert.equal(resourceNameProblem(n), null);
});
