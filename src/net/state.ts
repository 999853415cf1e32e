/**
 * State names shared by Connection and Listener, with Network framework's meanings.
 *   setup → preparing → ready; waiting (failed, may recover: retried with back-off or at
 *   once on restart()); failed (irrecoverable); cancelled (by the owner).
 */
export type ConnectionState = 'setup' | 'preparing' | 'ready' | 'waiting' | 'failed' | 'cancelled';
export type ListenerState = 'setup' | 'ready' | 'waiting' | 'failed' | 'cancelled';

/** States a connection never leaves. */
export function isFinalState(s: ConnectionState | ListenerState): boolean {
  return s === 'failed' || s === 'cancelled';
}
