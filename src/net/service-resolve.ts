/**
 * Service endpoints → host, port and addresses, through src/dnssd.
 * Until src/dnssd offers a resolver this reports ERR_RESOLVE_FAILED.
 */
import { PeerlinkError } from '../errors.js';
import type { ServiceEndpoint } from './endpoint.js';
import type { ResolvedAddress } from './dial.js';
import type { Parameters } from './parameters.js';

export interface ResolvedService {
  host: string;
  port: number;
  addresses: ResolvedAddress[];
  txt: Record<string, string | true>;
}

export async function resolveService(endpoint: ServiceEndpoint, _p: Parameters, _signal: AbortSignal): Promise<ResolvedService> {
  throw new PeerlinkError('ERR_RESOLVE_FAILED', `cannot resolve ${endpoint.name}.${endpoint.type}.${endpoint.domain}: Bonjour resolution is not available yet`);
}
