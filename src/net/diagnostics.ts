/**
 * Observability for src/net: diagnostics_channel channels (for tools and tests) and human
 * logging, off by default, on with NODE_DEBUG=peerlink (or NODE_DEBUG=peerlink:net).
 */
import { channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

/** `{id, role, endpoint, state, error?: {code, message}}` on every Connection state change. */
export const connectionStateChannel = channel('peerlink:net:connection:state');
/** `{port, state, error?}` on every Listener state change; `{port, error: {code, message}, remote}` on rejections. */
export const listenerStateChannel = channel('peerlink:net:listener:state');
export const listenerRejectChannel = channel('peerlink:net:listener:rejected');

const logNet = debuglog('peerlink:net');
const logAll = debuglog('peerlink');

export function log(fmt: string, ...args: unknown[]): void {
  if (logNet.enabled) logNet(fmt, ...args);
  else if (logAll.enabled) logAll(fmt, ...args);
}
