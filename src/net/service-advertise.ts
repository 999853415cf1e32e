/**
 * Listener service registration through src/dnssd: probe, announce, rename on conflict
 * (reported as a new `registered` name), goodbye on stop.
 */
import { Mdns } from '../dnssd/index.js';
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
    return {
      registration,
      updateTxt: (txt) => ad.update(txt),
      stop: async () => {
        await ad.stop();
        if (owned) await mdns.close();
      },
    };
  } catch (err) {
    if (owned) await mdns.close();
    throw err;
  }
}
