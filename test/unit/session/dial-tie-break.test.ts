/**
 * Which side of a pair dials, and when, in fake time — the Dialer itself, with a host whose
 * `prepare` records each dial and ends it at once with a chosen error (no socket is opened).
 *
 * Before: the side with the larger instance name dialled 1 s after it found the other, whether
 * or not the other could have resolved it by then (processes start seconds apart, and at 32–48
 * peers on two busy cores 40 % of the pairs found each other larger-side first), and whatever
 * was happening on its listener: the other side's dial, 3–5 s into its TLS handshake, was not
 * seen until its HELLO. About half of all first dials were duplicates. And dials that timed out
 * on a starved (live) peer sent its address to the once-a-minute schedule after three.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Dialer, pairFlip, type DialerHost } from '../../../src/session/dialer.js';
// The names here (vm-a < vm-b2 < vm-c0 < vm-m2 < vm-z8) are pairs whose flip bit (pairFlip) is 0:
// in each of them the larger name dials second (checked by the first test).
import type { FoundService } from '../../../src/session/discovery.js';
import { BudgetLedger, resolveBudgets } from '../../../src/session/budgets.js';
import { buildParameters, resolveOptions } from '../../../src/session/options.js';
import { PeerlinkError, type PeerlinkErrorCode } from '../../../src/errors.js';
import { Endpoint } from '../../../src/net/index.js';
import { TIMEOUT_GRACE } from '../../../src/session/dial-budget.js';

const T0 = 1_000_000;
const PSK = '5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e';

interface Lab {
  dialer: Dialer;
  /** Each dial: when (ms after T0) and to which target. */
  dials: Array<{ at: number; key: string }>;
  /** What the listener sees: addresses with an incoming connection in its handshake. */
  handshaking: Set<string>;
  /** The error every dial ends with. */
  outcome: { code: PeerlinkErrorCode };
  registeredName: string | undefined;
  /** Advances fake time in small steps (timers fire close to their time). */
  advance(ms: number): void;
  now(): number;
  close(): void;
}

function lab(instanceName: string): Lab {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'setImmediate', 'Date'], now: T0 });
  const options = resolveOptions({ serviceType: 'tiebreak', instanceName, security: { mode: 'psk', key: PSK } });
  const budgets = new BudgetLedger(resolveBudgets(undefined), {});
  const l: Lab = {
    dialer: undefined as unknown as Dialer,
    dials: [],
    handshaking: new Set(),
    outcome: { code: 'ERR_CONNECTION_REFUSED' },
    registeredName: undefined,
    advance(ms) {
      for (let left = ms; left > 0; left -= 10) mock.timers.tick(Math.min(10, left));
    },
    now: () => Date.now() - T0,
    close() {
      l.dialer.close();
      mock.timers.reset();
    },
  };
  const host: DialerHost = {
    options,
    peerId: options.peerId,
    parameters: buildParameters(options),
    budgets,
    running: () => true,
    record: () => undefined,
    registeredName: () => l.registeredName,
    prepare: (_conn, t) => {
      l.dials.push({ at: Date.now() - T0, key: t.key });
      throw new PeerlinkError(l.outcome.code, 'the fake dial ends here');
    },
    attach: () => assert.fail('no dial reaches ready here'),
    reportError: () => {},
    found: () => {},
    lost: () => {},
    handshakingFrom: (addresses) => addresses.some((a) => l.handshaking.has(a)),
  };
  l.dialer = new Dialer(host);
  return l;
}

/** Runs `fn` on a fresh lab, closed afterwards whatever happens. */
function withLab(instanceName: string, fn: (l: Lab) => void): void {
  const l = lab(instanceName);
  try {
    fn(l);
  } finally {
    l.close();
  }
}

function found(name: string, address: string): FoundService {
  return { name, port: 7000, addresses: [address], txt: { v: '1', sec: 'psk', arch: 'star' }, interfaces: ['eth0'] };
}

/** Our own service is announced under `name` (as SessionNetwork does on `registered`). */
function announce(l: Lab, name: string): void {
  l.registeredName = name;
  l.dialer.registered(name);
}

const firstDial = (l: Lab, key: string): number | undefined => l.dials.find((d) => d.key === key)?.at;

test('the names of these tests: in every pair the larger one dials second (their flip bit is 0)', () => {
  const names = ['vm-a', 'vm-b2', 'vm-c0', 'vm-m2', 'vm-z8'];
  for (const [i, lo] of names.entries()) for (const hi of names.slice(i + 1)) assert.equal(pairFlip(Buffer.from(lo), Buffer.from(hi)), false, `${lo} / ${hi}`);
});

test('the side that dials second waits until its announcement is 3 s old, not 1 s after it found the other (which had not resolved it yet)', () => {
  withLab('vm-b2', (l) => {
    announce(l, 'vm-b2');
    l.advance(500);
    // 'vm-b2' > 'vm-a': we are the side that lets the other dial first
    l.dialer.onFound(found('vm-a', '10.0.0.1'));
    l.advance(2000);
    assert.equal(firstDial(l, 'svc:vm-a'), undefined, 'not 1 s after finding it: vm-a cannot have resolved us yet');
    l.advance(700);
    const at = firstDial(l, 'svc:vm-a');
    assert.ok(at !== undefined && at >= 3000 && at < 3200, `dialled anyway once the announcement was 3 s old (at ${at} ms): a peer that never dials us is still connected`);
  });
});

test('long after our announcement the side that dials second keeps its 1 s head start; the other side dials at once', () => {
  withLab('vm-b2', (l) => {
    announce(l, 'vm-b2');
    l.advance(30_000);
    l.dialer.onFound(found('vm-a', '10.0.0.1'));
    l.dialer.onFound(found('vm-c0', '10.0.0.3'));
    l.advance(1500);
    const a = firstDial(l, 'svc:vm-a');
    const c = firstDial(l, 'svc:vm-c0');
    assert.ok(a !== undefined && a >= 31_000 && a < 31_200, `larger name: 1 s (at ${a})`);
    assert.ok(c !== undefined && c >= 30_000 && c < 30_200, `smaller name: at once (at ${c})`);
  });
});

test('before our service is announced (its name not final: clones all start as "vm") first dials wait for it, then follow the pair rule; never announced, they go after 10 s', () => {
  withLab('vm', (l) => {
    l.dialer.onFound(found('vm-a', '10.0.0.1'));
    l.dialer.onFound(found('vm-z8', '10.0.0.26'));
    l.advance(4000);
    assert.deepEqual(l.dials, [], 'nobody can dial us yet, and a HELLO now would name us "vm", a name nobody finds');
    // we are announced as "vm-m2": "vm-a" < "vm-m2" < "vm-z8"
    announce(l, 'vm-m2');
    l.advance(200);
    assert.ok((firstDial(l, 'svc:vm-z8') ?? 0) >= 4000, 'the smaller name: at once');
    assert.equal(firstDial(l, 'svc:vm-a'), undefined, 'the larger name: not yet');
    l.advance(3000);
    const a = firstDial(l, 'svc:vm-a');
    assert.ok(a !== undefined && a >= 7000 && a < 7200, `3 s after the announcement (at ${a})`);
  });
  withLab('vm', (never) => {
    never.dialer.onFound(found('vm-a', '10.0.0.1'));
    never.advance(9900);
    assert.deepEqual(never.dials, []);
    never.advance(300);
    assert.equal(firstDial(never, 'svc:vm-a'), 10_000, 'a registration that never completes does not keep us from dialling');
  });
});

test("a dial waits while the peer's own dial is in its TLS handshake here (a connection from its address, no HELLO yet), and only so long", () => {
  withLab('vm-a', (l) => {
    announce(l, 'vm-a');
    l.advance(30_000);
    // we are the smaller name (we dial first), but vm-b2 found us first and its dial is here
    l.handshaking.add('10.0.0.2');
    l.dialer.onFound(found('vm-b2', '10.0.0.2'));
    l.advance(3000);
    assert.equal(firstDial(l, 'svc:vm-b2'), undefined, 'no second connection while the first is in its handshake');
    // a peer at another address is dialled as usual
    l.dialer.onFound(found('vm-c0', '10.0.0.3'));
    l.advance(200);
    assert.ok(firstDial(l, 'svc:vm-c0') !== undefined);
    // the handshake never completes (a stranger at that address, or a starved peer): dialled anyway
    l.advance(6000);
    const at = firstDial(l, 'svc:vm-b2');
    assert.ok(at !== undefined && at >= 38_000 && at < 38_300, `dialled after 8 waits of 1 s (at ${at})`);
  });
});

test('a connection from an address several browse results share (peers on one host, loopback) is not taken for either peer: no wait', () => {
  withLab('vm-a', (l) => {
    announce(l, 'vm-a');
    l.advance(30_000);
    l.handshaking.add('127.0.0.1');
    l.dialer.onFound(found('vm-b2', '127.0.0.1'));
    l.dialer.onFound({ ...found('vm-c0', '127.0.0.1'), port: 7001 });
    l.advance(200);
    assert.ok(firstDial(l, 'svc:vm-b2') !== undefined && firstDial(l, 'svc:vm-c0') !== undefined, 'both dialled at once');
  });
});

test('connect() dials at once, even while a connection from that address is in its handshake', () => {
  withLab('vm-z8', (l) => {
    announce(l, 'vm-z8');
    l.handshaking.add('10.0.0.1');
    void l.dialer.connect(Endpoint.hostPort('10.0.0.1', 7000), undefined).catch(() => {});
    assert.deepEqual(l.dials, [{ at: 0, key: 'ep:10.0.0.1:7000' }]);
  });
});

test('dials that time out on a peer found just now stay off the once-a-minute schedule; a refused address does not', () => {
  withLab('vm-a', (l) => {
    announce(l, 'vm-a');
    l.advance(30_000);
    l.outcome.code = 'ERR_CONNECTION_TIMEOUT';
    l.dialer.onFound(found('vm-b2', '10.0.0.2'));
    l.advance(60_000);
    const timeouts = l.dials.filter((d) => d.key === 'svc:vm-b2').length;
    // 1, 2, 4, 8, 8, 8 … s apart (plus the target's own back-off): well over 3 in a minute
    assert.ok(timeouts >= 6, `${timeouts} dials in the first minute`);
    l.outcome.code = 'ERR_CONNECTION_REFUSED';
    l.dialer.onFound(found('vm-c0', '10.0.0.3'));
    l.advance(60_000);
    const refused = l.dials.filter((d) => d.key === 'svc:vm-c0').length;
    assert.ok(refused <= 4, `refused: ${refused} dials in a minute (three, then once a minute)`);
  });
});

test('a SYN-dropping stranger is still bounded: after the grace period its timeouts count, and it is dialled once a minute', () => {
  withLab('vm-a', (l) => {
    announce(l, 'vm-a');
    l.advance(30_000);
    l.outcome.code = 'ERR_CONNECTION_TIMEOUT';
    l.dialer.onFound(found('vm-b2', '10.0.0.2'));
    l.advance(TIMEOUT_GRACE);
    const inGrace = l.dials.length;
    // every dial here ends at once; a real one takes connectionTimeout (10 s), so fewer happen
    assert.ok(inGrace <= 20, `${inGrace} dials during the grace period`);
    l.advance(180_000);
    const after = l.dials.length - inGrace;
    assert.ok(after <= 4, `${after} dials in the 3 minutes after the grace period`);
  });
});
