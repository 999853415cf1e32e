/**
 * Bonjour (RFC 6762 mDNS + RFC 6763 DNS-SD) for peerlink. See docs/dnssd.md.
 *
 * `new Mdns({interfaces})` is the engine: it owns the sockets, and any number of
 * advertisements, browsers and resolves share it. The module-level `advertise`, `browse`
 * and `resolve` make a private engine for one job and close it when the job ends.
 */
import { Mdns, type AdvertiseOptions, type BrowseOptions, type MdnsOptions, type ResolveOptions } from './mdns.js';
import type { Advertisement } from './advertisement.js';
import type { ServiceBrowser } from './browser.js';
import type { ServiceInstance } from './service-instance.js';

export { Mdns } from './mdns.js';
export type { MdnsOptions, MdnsEvents, AdvertiseOptions, BrowseOptions, ResolveOptions } from './mdns.js';
export { Advertisement } from './advertisement.js';
export type { AdvertisementEvents } from './advertisement.js';
export { ServiceBrowser } from './browser.js';
export type { BrowseEvent, BrowseEventType, BrowserEvents } from './browser.js';
export type { ServiceInstance } from './service-instance.js';
export { DEFAULT_MDNS_LIMITS } from './rate-limit.js';
export type { MdnsLimits } from './rate-limit.js';
export { onLink } from './transport.js';
export { encodeTxt, decodeTxt, txtToStrings } from './txt.js';
export type { TxtInput, TxtEntry } from './txt.js';
export { parseServiceType, formatServiceType, validateInstanceName, parseHostName } from './names.js';

type EngineOptions = Pick<MdnsOptions, 'interfaces' | 'host'>;

/** Advertises one service on a private engine; `stop()` sends goodbyes and closes it. */
export function advertise(opts: AdvertiseOptions & EngineOptions): Advertisement {
  const mdns = new Mdns(engineOptions(opts));
  let ad: Advertisement;
  try {
    ad = mdns.advertise(opts);
  } catch (err) {
    void mdns.close();
    throw err;
  }
  const stop = ad.stop.bind(ad);
  ad.stop = async () => {
    await stop();
    await mdns.close();
  };
  return ad;
}

/** Browses on a private engine; `stop()` closes it. */
export function browse(opts: BrowseOptions & EngineOptions): ServiceBrowser {
  const mdns = new Mdns(engineOptions(opts));
  let browser: ServiceBrowser;
  try {
    browser = mdns.browse(opts);
  } catch (err) {
    void mdns.close();
    throw err;
  }
  const stop = browser.stop.bind(browser);
  browser.stop = () => {
    stop();
    void mdns.close();
  };
  return browser;
}

/** Resolves one instance on a private engine. */
export async function resolve(instance: { name: string; type: string; domain?: string }, opts: ResolveOptions & EngineOptions = {}): Promise<ServiceInstance[]> {
  const mdns = new Mdns(engineOptions(opts));
  try {
    return await mdns.resolve(instance, opts);
  } finally {
    await mdns.close();
  }
}

function engineOptions(o: EngineOptions): MdnsOptions {
  const out: MdnsOptions = {};
  if (o.interfaces) out.interfaces = o.interfaces;
  if (o.host) out.host = o.host;
  return out;
}
export * from './unicast/index.js';
