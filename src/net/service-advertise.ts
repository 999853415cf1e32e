/**
 * Listener service registration through src/dnssd: probe, announce, rename on conflict
 * (reported as a new `registered` name), goodbye on stop.
 */
import { Mdns, UnicastAdvertisement, resolveWideArea } from '../dnssd/index.js';
import { toPeerlinkError } from './net-errors.js';
import type { ListenerServiceOptions, ServiceRegistration } from './listener.js';

export interface Advertisement {
  registration: ServiceRegistration;
  /** Replaces the TXT record (announced again; browsers report `changed`). */
  updateTxt(txt: Record<string, string | Uint8Array | true>): void;
  stop(): Promise<void>;
}

export async function advertiseService(service: ListenerServiceOptions, port: number, onRegistration: (r: ServiceRegistration) => void): Promise<Advertisement> {
  const owned = service.mdns === undefined;
  const mdns = service.mdns ?? new Mdns(service.interfaces ? { interfaces: service.interfaces } : {});
  const domain = (service.domain ?? 'local').replace(/\.$/, '');
  const type = service.type.replace(/\.$/, '');
  const registration: ServiceRegistration = { name: service.name, type, domain: `${domain}.`, change: 'registered' };
  try {
    const ad = mdns.advertise({ name: service.name, type, port, domain, ...(service.txt ? { txt: service.txt } : {}) });
    ad.on('registered', (name) => {
      registration.name = name;
      onRegistration({ ...registration });
    });
    ad.on('renamed', ({ name }) => {
      registration.name = name;
    });
    // Errors surface as warnings only; the listener itself keeps working without Bonjour.
    ad.on('error', () => undefined);
    const unicast = startUnicast(service, type, port, onRegistration);
    return {
      registration,
      updateTxt: (txt) => {
        ad.update(txt);
        for (const u of unicast) u.update(txt).catch(() => undefined);
      },
      stop: async () => {
        await Promise.allSettled(
          unicast.map(async (u) => {
            const was = u.registered;
            await u.stop();
            if (was) onRegistration({ name: u.name, type, domain: `${u.domain}.`, change: 'removed' });
          }),
        );
        await ad.stop();
        if (owned) await mdns.close();
      },
    };
  } catch (err) {
    if (owned) await mdns.close();
    throw err;
  }
}

/** Wide-area registrations beside mDNS: each domain reports registered / failed on its own. */
function startUnicast(service: ListenerServiceOptions, type: string, port: number, onRegistration: (r: ServiceRegistration) => void): UnicastAdvertisement[] {
  const wa = resolveWideArea(service.wideArea);
  if (!wa) return [];
  return wa.domains.map((domain) => {
    const u = new UnicastAdvertisement(wa.ctx, { name: service.name, type, port, domain, ...(service.txt ? { txt: service.txt } : {}), ...(wa.lease !== undefined ? { lease: wa.lease } : {}), ...(wa.addresses ? { addresses: wa.addresses } : {}) });
    u.on('error', () => undefined);
    u.start().then(
      (name) => onRegistration({ name, type, domain: `${u.domain}.`, change: 'registered' }),
      (err: unknown) => onRegistration({ name: service.name, type, domain: `${u.domain}.`, change: 'failed', error: toPeerlinkError(err, { what: `registering in ${u.domain}` }) }),
    );
    return u;
  });
}
