/**
 * Listener service registration through src/dnssd. Until src/dnssd offers a responder this
 * reports that advertising is unavailable.
 */
import { PeerlinkError } from '../errors.js';
import type { ListenerServiceOptions, ServiceRegistration } from './listener.js';

export interface Advertisement {
  registration: ServiceRegistration;
  stop(): Promise<void>;
}

export async function advertiseService(service: ListenerServiceOptions, _port: number, _onRegistration: (r: ServiceRegistration) => void): Promise<Advertisement> {
  throw new PeerlinkError('ERR_INTERNAL', `cannot advertise ${service.name}.${service.type}: Bonjour registration is not available yet`);
}
