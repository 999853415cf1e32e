/**
 * What a connection runs over (Network framework's NWPath as seen from a connection).
 */
import type { InterfaceType } from '../path/interfaces.js';
import type { HostPortEndpoint } from './endpoint.js';

export interface PathInterface {
  name: string;
  index: number;
  type: InterfaceType;
  mtu: number;
}

export interface ConnectionPath {
  localEndpoint: HostPortEndpoint;
  remoteEndpoint: HostPortEndpoint;
  /** The interface the connection uses (from the socket's binding or the local address's subnet). */
  interface?: PathInterface;
  /**
   * How the interface is known: 'pinned' = the socket is bound to it (SO_BINDTODEVICE);
   * 'route' = inferred from the local address; 'unknown'.
   */
  interfaceSource: 'pinned' | 'route' | 'unknown';
  /**
   * NWPath.status as seen by the connection: 'satisfied' while its interface is up and has the
   * local address, 'unsatisfied' while not (the same facts as the `viability` event).
   */
  status: 'satisfied' | 'unsatisfied';
}
