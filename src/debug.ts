/**
 * Human debug logging shared by every layer: off by default, on with NODE_DEBUG=peerlink
 * (every layer) or NODE_DEBUG=peerlink:<layer> (one).
 */
import { debuglog } from 'node:util';

/** A layer's logger; `enabled` lets a caller skip building costly arguments when nothing prints. */
export interface DebugLog {
  (fmt: string, ...args: unknown[]): void;
  readonly enabled: boolean;
}

/** A layer's `log(fmt, ...args)`: printed under `peerlink:<layer>` when that is enabled, else under `peerlink`. */
export function debugLog(layer: string): DebugLog {
  const logLayer = debuglog(`peerlink:${layer}`);
  const logAll = debuglog('peerlink');
  const log = (fmt: string, ...args: unknown[]): void => {
    if (logLayer.enabled) logLayer(fmt, ...args);
    else if (logAll.enabled) logAll(fmt, ...args);
  };
  return Object.defineProperty(log, 'enabled', { get: () => logLayer.enabled || logAll.enabled }) as DebugLog;
}
