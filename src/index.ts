// The public API of peerlink, and nothing else.
export { PeerlinkError, isPeerlinkError } from './errors.js';
export type { PeerlinkErrorCode } from './errors.js';
