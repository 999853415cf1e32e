/**
 * Domain names in presentation form (see types.ts) <-> labels, and the limits that bound
 * them: RFC 1035 §2.3.4 (label <= 63 bytes, name <= 255 bytes on the wire).
 */
import { PeerlinkError } from '../../errors.js';

export const MAX_LABEL_BYTES = 63;
export const MAX_NAME_BYTES = 255;

/** Escapes one label for presentation form. */
export function escapeLabel(label: string): string {
  return NEEDS_ESCAPE.test(label) ? label.replace(/[\\.]/g, (c) => `\\${c}`) : label;
}
const NEEDS_ESCAPE = /[\\.]/;

/** Joins raw labels into a presentation-form name. */
export function joinLabels(labels: readonly string[]): string {
  return labels.map(escapeLabel).join('.');
}

/** Splits a presentation-form name into raw labels ('' is the root: no labels). */
export function splitName(name: string): string[] {
  const labels: string[] = [];
  let cur = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '\\' && i + 1 < name.length) {
      cur += name[++i];
    } else if (c === '.') {
      labels.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  // a trailing dot (absolute form) is accepted and means nothing more
  if (cur !== '' || (labels.length > 0 && !name.endsWith('.'))) labels.push(cur);
  return labels;
}

/** Encodes labels, checking the wire limits; throws ERR_INVALID_ARGUMENT when violated. */
export function labelsToBuffers(name: string): Buffer[] {
  const labels = splitName(name).map((l) => Buffer.from(l, 'utf8'));
  let total = 1;
  for (const l of labels) {
    if (l.length === 0) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `empty label in DNS name "${name}"`);
    if (l.length > MAX_LABEL_BYTES) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `label longer than 63 bytes in DNS name "${name}"`);
    total += l.length + 1;
  }
  if (total > MAX_NAME_BYTES) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `DNS name longer than 255 bytes: "${name}"`);
  return labels;
}

/** DNS names compare case-insensitively in ASCII only (RFC 4343); this is the map key. */
export function nameKey(name: string): string {
  return HAS_UPPER.test(name) ? name.replace(/[A-Z]/g, (c) => c.toLowerCase()) : name;
}
const HAS_UPPER = /[A-Z]/;

export function sameName(a: string, b: string): boolean {
  return a === b || nameKey(a) === nameKey(b);
}
