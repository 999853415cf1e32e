/** Messages between the demo's narrator (demo.ts) and its peer processes (demo-peer.ts). */

export type DemoCommand =
  | { cmd: 'say'; text: string }
  | { cmd: 'stream'; to: string; bytes: number }
  | { cmd: 'file'; to: string; path: string; name: string }
  | { cmd: 'close' };

export type DemoEvent =
  | { ev: 'ready'; port: number }
  | { ev: 'found'; peer: string }
  | { ev: 'peer'; peer: string; state: 'notConnected' | 'connecting' | 'connected' }
  | { ev: 'message'; from: string; text: string }
  | { ev: 'stream-sent'; to: string; bytes: number; sha256: string }
  | { ev: 'stream'; from: string; name: string; bytes: number; sha256: string }
  | { ev: 'progress'; bytes: number; total: number; rate: number }
  | { ev: 'file-sent'; to: string; sha256: string; size: number }
  | { ev: 'resource-start'; from: string; name: string; size: number }
  | { ev: 'resource-done'; from: string; name: string; path: string; sha256: string; size: number }
  | { ev: 'error'; code: string; message: string }
  | { ev: 'closed' };
