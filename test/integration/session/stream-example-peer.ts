/**
 * Test fixture: the stream example of docs/session.md as an app would write it, one side per
 * process (stream-close.test.ts). Reports on stderr as JSON lines; stdout is the stream's text.
 *
 *   node stream-example-peer.js '{"role":"reader","errorHandler":false,"closeAfterStream":false}'
 *   node stream-example-peer.js '{"role":"writer","port":1234,"mode":"end"|"open"|"abrupt"}'
 *
 * reader: `session.on('stream', s => s.pipe(process.stdout))` (plus an 'error' listener only
 * with errorHandler, as docs/session.md shows for abrupt losses); closeAfterStream: closes its
 * session 300 ms after a stream arrived. writer: opens a stream to the reader and
 * end: `stream.end('hello from B\n')` then `await session.close()`;
 * open: writes a line every 50 ms and never ends (the reader closes);
 * abrupt: writes one line without ending, then kills itself (SIGKILL).
 */
import { PeerSession } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';
import type { PeerlinkError } from '../../../src/errors.js';

interface Config {
  role: 'reader' | 'writer';
  port?: number;
  mode?: 'end' | 'open' | 'abrupt';
  errorHandler?: boolean;
  closeAfterStream?: boolean;
}
const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const report = (o: Record<string, unknown>): void => {
  process.stderr.write(JSON.stringify(o) + '\n');
};

const session = new PeerSession({ serviceType: 'streamex', displayName: cfg.role === 'reader' ? 'A' : 'B', advertise: false, browse: false });
session.on('peer', (peer, state) => report({ ev: 'peer', name: peer.displayName, state }));

if (cfg.role === 'reader') {
  session.on('stream', (stream, name) => {
    report({ ev: 'stream', name });
    stream.on('end', () => report({ ev: 'stream-end' }));
    stream.on('close', () => report({ ev: 'stream-close' }));
    if (cfg.errorHandler) stream.on('error', (err: PeerlinkError) => report({ ev: 'stream-error', code: err.code }));
    stream.pipe(process.stdout);
    if (cfg.closeAfterStream) {
      setTimeout(() => {
        void session.close().then(() => report({ ev: 'closed' }));
      }, 300);
    }
  });
  await session.start();
  report({ ev: 'ready', port: session.listenPort });
} else {
  await session.start();
  const peer = await session.connect(Endpoint.hostPort('127.0.0.1', cfg.port ?? 0));
  const stream = await session.openStream('greeting', peer);
  report({ ev: 'opened' });
  if (cfg.mode === 'end') {
    stream.end('hello from B\n');
    await session.close();
    report({ ev: 'closed' });
  } else if (cfg.mode === 'open') {
    let n = 0;
    const timer = setInterval(() => stream.write(`tick ${n++}\n`), 50);
    stream.on('close', () => {
      clearInterval(timer);
      report({ ev: 'stream-close' });
      void session.close().then(() => report({ ev: 'closed' }));
    });
  } else {
    stream.write('partial\n', () => setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300));
  }
}
