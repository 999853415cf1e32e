/**
 * A Dialer in fake time whose dials never open a socket: the host's `prepare` holds each dial's
 * handshake open until the test ends it (`held[i].end(err?)`). Shared by the dialsInFlight tests.
 */
import { mock } from 'node:test';
import assert from 'node:assert/strict';
import { Dialer, type DialerHost } from '../../../src/session/dialer.js';
import { BudgetLedger, resolveBudgets } from '../../../src/session/budgets.js';
import { buildParameters, resolveOptions } from '../../../src/session/options.js';
import { PeerlinkError } from '../../../src/errors.js';
import type { PeerRecord } from '../../../src/session/peer-record.js';

const T0 = 1_000_000;
const PSK = '5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e';

export interface Held {
  key: string;
  end(err?: PeerlinkError): void;
}

export function rig(budgets = resolveBudgets(undefined)) {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'setImmediate', 'Date'], now: T0 });
  const options = resolveOptions({ serviceType: 'inflight', instanceName: 'vm-zz', security: { mode: 'psk', key: PSK } });
  const ledger = new BudgetLedger(budgets, {});
  const held: Held[] = [];
  const connected = new Set<string>();
  const host: DialerHost = {
    options,
    peerId: options.peerId,
    parameters: buildParameters(options),
    budgets: ledger,
    running: () => true,
    record: (key) => (connected.has(key) ? ({ state: 'connected', key, peer: { id: key } } as unknown as PeerRecord) : undefined),
    registeredName: () => 'vm-zz',
    prepare: (conn, t) => {
      // the handshake is in flight until the test ends it
      let settle!: (err?: PeerlinkError) => void;
      const done = new Promise<void>((resolve, reject) => {
        settle = (err) => (err ? reject(err) : resolve());
      });
      conn.start = () => conn;
      conn.whenReady = () => done;
      held.push({ key: t.key, end: (err) => settle(err ?? new PeerlinkError('ERR_CONNECTION_REFUSED', 'ended by the test')) });
    },
    attach: () => assert.fail('no dial reaches ready here'),
    reportError: () => {},
    found: () => {},
    lost: () => {},
  };
  const dialer = new Dialer(host);
  dialer.registered('vm-zz');
  const advance = (ms: number): void => {
    for (let left = ms; left > 0; left -= 10) mock.timers.tick(Math.min(10, left));
  };
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { dialer, held, connected, ledger, advance, flush, close: () => (dialer.close(), mock.timers.reset()) };
}
