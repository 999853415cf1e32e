/**
 * Small loopback fixtures for unit tests: a connected TCP socket pair on 127.0.0.1 and a
 * temporary directory, both removed when the test ends.
 */
import { createServer, connect, type Socket, type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

/** What these fixtures need of a test context: somewhere to register cleanup. */
export type Ctx = { after: (fn: () => unknown) => void };

/** A temporary directory, removed after the test. */
export async function tempDir(t: Ctx, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A connected socket pair on loopback, destroyed after the test. */
export async function socketPair(t: Ctx): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [srv] = await accepted;
  server.close();
  t.after(() => {
    client.destroy();
    srv.destroy();
  });
  return [client, srv];
}
