/**
 * What a Browser learnt about a service endpoint (interfaces, fresh addresses), so that a
 * Connection to that endpoint resolves on the same interfaces and can skip a query when
 * the answer is only seconds old. Keyed by the endpoint object; nothing is global state
 * beyond that weak association.
 */
import type { UnicastContext } from '../dnssd/index.js';
import type { ServiceEndpoint } from './endpoint.js';

export interface ServiceHint {
  /** Interfaces the browser runs on (resolution uses the same ones). */
  interfaces: string[];
  host?: string;
  port?: number;
  addresses?: string[];
  txt?: Record<string, string | true>;
  at: number;
  /** Found in a unicast DNS domain: resolve there again (not by mDNS). */
  unicast?: UnicastContext;
}

export const serviceHints = new WeakMap<ServiceEndpoint, ServiceHint>();

/** Addresses seen this recently are used without asking the network again. */
export const HINT_FRESH_MS = 5000;
