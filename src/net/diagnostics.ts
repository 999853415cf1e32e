/**
 * Observability for src/net: diagnostics_channel channels (for tools and tests) and human
 * logging, off by default, on with NODE_DEBUG=peerlink (or NODE_DEBUG=peerlink:net).
 */
import { channel } from 'node:diagnostics_channel';
import { debugLog } from '../debug.js';

/** `{id, role, endpoint, state, error?: {code, message}}` on every Connection state change. */
export const connectionStateChannel = channel('peerlink:net:connection:state');
/** `{port, state, error?}` on every Listener state change; `{port, error: {code, message}, remote}` on rejections. */
export const listenerStateChannel = channel('peerlink:net:listener:state');
export const listenerRejectChannel = channel('peerlink:net:listener:rejected');

export const log = debugLog('net');
