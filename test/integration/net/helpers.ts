/** Shared helpers for the net integration tests (loopback only). */
import { createServer } from 'node:net';
import { Connection, Endpoint, Listener, Parameters } from '../../../src/net/index.js';
import type { ConnectionState } from '../../../src/net/index.js';

/** A listener that echoes every message (message protocols) or every byte (streams). */
export async function echoListener(params: Parameters, host = '127.0.0.1'): Promise<Listener> {
  const l = new Listener(params, { host });
  l.on('connection', (c) => void echo(c));
  await l.start();
  return l;
}

async function echo(c: Connection): Promise<void> {
  try {
    if (c.parameters.isMessageProtocol) {
      for await (const m of c.messages()) await c.send(m);
      c.cancel();
    } else {
      for (let b = await c.receive(); b !== null; b = await c.receive()) await c.send(b);
      await c.send(Buffer.alloc(0), { final: true });
    }
  } catch {
    c.forceCancel();
  }
}

export function dial(port: number, params: Parameters, host = '127.0.0.1'): Promise<Connection> {
  return Connection.connect(Endpoint.hostPort(host, port), params);
}

/** Resolves with the next state in `states` that the connection enters. */
export function nextState(c: Connection, ...states: ConnectionState[]): Promise<ConnectionState> {
  if (states.includes(c.state)) return Promise.resolve(c.state);
  return new Promise((resolve) => {
    const on = (s: ConnectionState): void => {
      if (!states.includes(s)) return;
      c.off('state', on);
      resolve(s);
    };
    c.on('state', on);
  });
}

/** A loopback TCP port that was free a moment ago (nothing listens on it now). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Reads a byte stream to its end. */
export async function readAll(c: Connection): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let b = await c.receive(); b !== null; b = await c.receive()) parts.push(b);
  return Buffer.concat(parts);
}

export const PSK = '00112233445566778899aabbccddeeff';
