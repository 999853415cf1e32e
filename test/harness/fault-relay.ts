/**
 * A user-space delay relay for the fault lab (this kernel has no netem): listens on a port
 * of the host it runs in and forwards TCP connections and/or UDP datagrams to a target,
 * holding every chunk / datagram for `delayMs` + a uniform random `jitterMs` in each
 * direction. TCP keeps byte order (a chunk is never released before the one ahead of it,
 * so jitter only bunches them); UDP datagrams are released independently (jitter may
 * reorder them, as on a real network). Started by `FaultLab.relay()`.
 *
 *   node fault-relay.js '{"port":7000,"host":"10.77.0.2","targetPort":7001,"delayMs":100,"jitterMs":0,"protocol":"both"}'
 *
 * Prints {"ready":true,"port":n} once listening; runs until killed.
 */
import { createServer, createConnection, type Socket } from 'node:net';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';

export interface RelayConfig {
  /** Port to listen on (TCP and/or UDP), all addresses. */
  port: number;
  /** Target address and port. */
  host: string;
  targetPort: number;
  delayMs: number;
  jitterMs?: number;
  protocol?: 'tcp' | 'udp' | 'both';
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as RelayConfig;
const jitter = cfg.jitterMs ?? 0;
const protocol = cfg.protocol ?? 'both';
const hold = (): number => cfg.delayMs + (jitter > 0 ? Math.random() * jitter : 0);

/**
 * Pipes `from` into `to` with the delay, keeping order. A clean end is passed on as an end
 * (after the data ahead of it); only an abrupt close or an error destroys the other side —
 * destroying after a clean end would drop what `to` has not flushed yet.
 */
function delayedPipe(from: Socket, to: Socket): void {
  // One FIFO and one timer per direction: separate timers per chunk can fire out of order
  // (Node times them from its cached loop clock), which would reorder or truncate the stream.
  const queue: Array<{ at: number; run: () => void }> = [];
  let timer: NodeJS.Timeout | undefined;
  let lastAt = 0;
  let ended = false;
  const pump = (): void => {
    timer = undefined;
    while (queue.length > 0 && (queue[0] as { at: number }).at <= Date.now()) (queue.shift() as { run: () => void }).run();
    const head = queue[0];
    if (head) timer = setTimeout(pump, Math.max(1, head.at - Date.now()));
  };
  const release = (run: () => void): void => {
    lastAt = Math.max(lastAt, Date.now() + hold());
    queue.push({ at: lastAt, run });
    if (!timer) timer = setTimeout(pump, Math.max(1, lastAt - Date.now()));
  };
  from.on('data', (chunk: Buffer) => {
    release(() => {
      if (to.destroyed) return;
      // Backpressure, late but bounded: the source waits while the destination is above its mark.
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  });
  from.on('end', () => {
    ended = true;
    release(() => to.end());
  });
  from.on('error', () => release(() => to.destroy()));
  from.on('close', () => {
    if (!ended) release(() => to.destroy());
  });
}

function startTcp(): Promise<void> {
  // Half-open allowed both ways: a FIN is relayed (delayed) like data, never answered by Node itself.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ host: cfg.host, port: cfg.targetPort, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    delayedPipe(client, upstream);
    delayedPipe(upstream, client);
  });
  server.on('error', (err) => {
    process.stderr.write(`relay tcp: ${err.message}\n`);
    process.exit(1);
  });
  return new Promise((resolve) => server.listen(cfg.port, resolve));
}

function startUdp(): Promise<void> {
  const family = cfg.host.includes(':') ? 'udp6' : 'udp4';
  const front = createSocket({ type: 'udp6', ipv6Only: false });
  // One upstream socket per client address, so replies find their way back.
  const flows = new Map<string, UdpSocket>();
  front.on('message', (msg: Buffer, from: RemoteInfo) => {
    const key = `${from.address}|${from.port}`;
    let up = flows.get(key);
    if (!up) {
      const s = createSocket(family);
      s.on('message', (reply: Buffer) => setTimeout(() => front.send(reply, from.port, from.address), hold()));
      s.bind(0);
      flows.set(key, s);
      up = s;
    }
    const sock = up;
    setTimeout(() => sock.send(msg, cfg.targetPort, cfg.host), hold());
  });
  return new Promise((resolve) => front.bind(cfg.port, () => resolve()));
}

async function main(): Promise<void> {
  if (protocol !== 'udp') await startTcp();
  if (protocol !== 'tcp') await startUdp();
  process.stdout.write(JSON.stringify({ ready: true, port: cfg.port }) + '\n');
}

void main();
