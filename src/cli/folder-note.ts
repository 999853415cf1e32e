/** The note both sides print after a folder: what the sender left out, what changed while it was sent. */
import type { FolderSummary } from '../session/resource-send.js';
import { printable } from './progress.js';

export function folderNote(f: FolderSummary, log: (line: string) => void): void {
  log(`folder: ${f.files} files, ${f.dirs} directories`);
  for (const s of f.skipped) log(`  left out (${s.why === 'symlink' ? 'symlink, not followed' : s.why === 'special' ? 'not a regular file' : 'unportable name'}): "${printable(s.path)}"`);
  for (const c of f.changed) log(`  changed while it was sent, not saved: "${printable(c)}"`);
}
