/**
 * Browser: Network framework's NWBrowser for Bonjour. Results carry service endpoints a
 * Connection can use directly.
 */
import { EventEmitter } from 'node:events';
import type { ServiceEndpoint } from './endpoint.js';

export interface BrowseResult {
  endpoint: ServiceEndpoint;
  /** TXT record as key → value (true for a key without '='). */
  txt: Record<string, string | true>;
  /** Interfaces the service was seen on. */
  interfaces: string[];
}

export interface BrowserOptions {
  /** Service type, e.g. `_example._tcp`. */
  type: string;
  domain?: string;
  /** Interfaces to browse on (names). Default: the dnssd default. */
  interfaces?: string[];
}

export type BrowseChange =
  | { change: 'added'; result: BrowseResult }
  | { change: 'removed'; result: BrowseResult }
  | { change: 'changed'; result: BrowseResult; previous: BrowseResult };

export interface BrowserEvents {
  added: [result: BrowseResult];
  removed: [result: BrowseResult];
  changed: [result: BrowseResult, previous: BrowseResult];
}

export class Browser extends EventEmitter<BrowserEvents> {
  readonly options: BrowserOptions;

  constructor(options: BrowserOptions) {
    super();
    this.options = options;
  }

  /** Current results. */
  get results(): BrowseResult[] {
    return [];
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /** Changes as an async iterator (until cancel()). */
  changes(): AsyncIterableIterator<BrowseChange> {
    throw new Error('not implemented yet');
  }

  async cancel(): Promise<void> {}
}
