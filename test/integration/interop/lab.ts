/**
 * The lab an interop test file runs in: `useLab` registers the file's `before` (build the
 * namespaces, then the file's own set-up) and `after` (kill every tracked process, stop the
 * Avahi daemons, tear the lab down).
 */
import { after, before } from 'node:test';
import { createLab, type Host, type Lab, type LabOptions } from '../../harness/netns.js';
import { startAvahi, type Avahi } from '../../harness/avahi.js';
import { killAllTracked } from '../../harness/proc.js';

/**
 * Registers `before`/`after` for the file. Unless `skip` (a `skipUnless` result), `before`
 * creates the lab and runs `setup` with it and the list of Avahi daemons that `after` stops
 * (set-up and tests push theirs onto it). Returns that list.
 */
export function useLab(skip: string | false, options: LabOptions, setup: (lab: Lab, avahis: Avahi[]) => Promise<void> | void = () => undefined): Avahi[] {
  const avahis: Avahi[] = [];
  let lab: Lab | undefined;
  before(async () => {
    if (skip) return;
    lab = await createLab(options);
    await setup(lab, avahis);
  });
  after(async () => {
    await killAllTracked();
    for (const a of avahis) await a.stop().catch(() => undefined);
    await lab?.teardown();
  });
  return avahis;
}

/** The usual Avahi of a three-host lab: on h2, host name `avahi-h2`; stopped by `useLab`'s `after`. */
export async function startAvahiH2(lab: Lab, avahis: Avahi[]): Promise<Avahi> {
  const avahi = await startAvahi(lab, 2, { hostName: 'avahi-h2' });
  avahis.push(avahi);
  return avahi;
}

/** A point-to-point veth `eth1` between two lab hosts, off the bridge: 10.55.0.<host number>/24 on each end. */
export async function addDirectLink(lab: Lab, a: Host, b: Host): Promise<void> {
  await lab.ip(a, ['link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', b.ns]);
  await lab.ip(a, ['addr', 'add', `10.55.0.${a.index}/24`, 'dev', 'eth1']);
  await lab.ip(b, ['addr', 'add', `10.55.0.${b.index}/24`, 'dev', 'eth1']);
  await lab.ip(a, ['link', 'set', 'eth1', 'up']);
  await lab.ip(b, ['link', 'set', 'eth1', 'up']);
}
