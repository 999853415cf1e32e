/**
 * Resource names: the one piece of a received resource that becomes part of a path
 * on the receiver's disk, so it is validated before anything is written.
 *
 * The rule is "a portable single file name": what is valid here is valid on Linux,
 * macOS and Windows alike, so a sender learns the same answer whichever platform the
 * receiver runs on, and a name can never mean a different file on the receiving OS
 * (Windows strips trailing dots, turns `a:b` into an alternate data stream and maps
 * `NUL.txt` to a device). Names are refused, never repaired: a silently rewritten
 * name is a name the sender did not choose.
 */
import { PeerlinkError } from '../errors.js';
import { codePointLabel, escapeForDisplay, findInvisible } from '../display-text.js';

/** Longest name in UTF-8 bytes (NAME_MAX on Linux/macOS; Windows counts 255 UTF-16 units, never more bytes). */
export const MAX_RESOURCE_NAME_BYTES = 255;

// Windows device names, reserved with any extension ("nul.txt") and any case.
const DEVICE_NAMES = new Set([
  'CON', 'PRN', 'AUX', 'NUL', 'CONIN$', 'CONOUT$', 'CLOCK$',
  ...Array.from({ length: 10 }, (_, i) => `COM${i}`),
  ...Array.from({ length: 10 }, (_, i) => `LPT${i}`),
  // Windows also treats the superscript digits as device numbers.
  'COM¹', 'COM²', 'COM³', 'LPT¹', 'LPT²', 'LPT³',
]);

// C0 and C1 controls and DEL: invisible, break terminals and logs.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional overrides/isolates make "evil\u202Etxt.exe" display as "evilexe.txt".
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
// Characters Windows refuses in file names; ':' would also address an NTFS stream.
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;
// A lone surrogate cannot be encoded as UTF-8: the file name would silently change.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a name was refused, as a short phrase; null when the name is acceptable. */
export function resourceNameProblem(name: unknown): string | null {
  if (typeof name !== 'string') return 'it is not a string';
  if (name.length === 0) return 'it is empty';
  if (name === '.' || name === '..') return `"${name}" names a directory`;
  if (name.includes('/') || name.includes('\\')) return 'it contains a path separator';
  if (CONTROL.test(name)) return 'it contains a control character';
  if (BIDI.test(name)) return 'it contains a bidirectional-text override';
  if (LONE_SURROGATE.test(name)) return 'it is not valid Unicode';
  // Zero-width and other format characters, line/paragraph separators: a name that looks
  // like another one, or like nothing (display-text.ts).
  const invisible = findInvisible(name);
  if (invisible !== undefined) return `it contains the invisible character ${codePointLabel(invisible)}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_RESOURCE_NAME_BYTES) return `it is longer than ${MAX_RESOURCE_NAME_BYTES} bytes`;
  if (WINDOWS_FORBIDDEN.test(name)) return 'it contains one of < > : " | ? *';
  if (name.startsWith('.')) return 'it starts with "." (a hidden file)';
  if (name.endsWith('.') || name.endsWith(' ')) return 'it ends with "." or a space';
  if (name.trim().length === 0) return 'it is blank';
  const stem = name.split('.')[0]!.trimEnd().toUpperCase();
  if (DEVICE_NAMES.has(stem)) return `"${stem}" is a reserved device name`;
  return null;
}

/** Returns the name unchanged, or throws ERR_RESOURCE_NAME saying why it was refused. */
export function validateResourceName(name: unknown): string {
  const problem = resourceNameProblem(name);
  if (problem !== null) {
    throw new PeerlinkError('ERR_RESOURCE_NAME', `resource name ${describe(name)} refused: ${problem}; send it under a plain file name such as "report.pdf"`);
  }
  return name as string;
}

/** A name made safe to print: quoted, invisible characters escaped (display-text.ts), and cut short. */
export function describe(name: unknown): string {
  if (typeof name !== 'string') return `(${typeof name})`;
  const shown = name.length > 60 ? `${name.slice(0, 57)}...` : name;
  return `"${escapeForDisplay(shown.replace(/["\\]/g, (c) => `\\${c}`))}"`;
}

// Extensions kept together when a numbered suffix is inserted ("a (1).tar.gz", not "a.tar (1).gz").
const DOUBLE_EXTENSIONS = ['.tar.gz', '.tar.bz2', '.tar.xz', '.tar.zst', '.tar.lz', '.tar.Z'];

/**
 * The n-th alternative for a name that already exists: `report (1).pdf`, `report (2).pdf`.
 * The stem is shortened (on a character boundary) if the suffix would make the name overlong.
 */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const lower = name.toLowerCase();
  const double = DOUBLE_EXTENSIONS.find((ext) => lower.endsWith(ext.toLowerCase()) && lower.length > ext.length);
  const dot = name.lastIndexOf('.');
  const extLength = double ? double.length : dot > 0 ? name.length - dot : 0;
  let stem = name.slice(0, name.length - extLength);
  const ext = name.slice(name.length - extLength);
  const suffix = ` (${n})`;
  const budget = MAX_RESOURCE_NAME_BYTES - Buffer.byteLength(suffix + ext, 'utf8');
  while (Buffer.byteLength(stem, 'utf8') > budget) {
    const cps = Array.from(stem);
    cps.pop();
    stem = cps.join('');
  }
  return `${stem.trimEnd()}${suffix}${ext}`;
}
