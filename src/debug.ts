/**
 * Human debug logging shared by every layer: off by default, on with NODE_DEBUG=peerlink
 * (every layer) or NODE_DEBUG=peerlink:<layer> (one).
 */
import { debuglog } from 'node:util';

/** A layer's `log(fmt, ...args)`: printed under `peerlink:<layer>` when that is enabled, else under `peerlink`. */
export function debugLog(layer: string): (fmt: string, ...args: unknown[]) => void {
  const logLayer = debuglog(`peerlink:${layer}`);
  const logAll = debuglog('peerlink');
  return (fmt, ...args) => {
    if (logLayer.enabled) logLayer(fmt, ...args);
    else if (logAll.enabled) logAll(fmt, ...args);
  };
}
