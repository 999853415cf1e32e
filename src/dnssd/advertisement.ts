/**
 * Advertisement: the public handle of one advertised service. Its `name` is the final
 * instance name (it changes on conflict, with a `renamed` event); `registered` fires once
 * probing succeeded and the service has been announced.
 */
import { EventEmitter } from 'node:events';
import type { Registration, Responder } from './responder.js';
import { formatServiceType } from './names.js';
import { encodeTxt, type TxtInput } from './txt.js';

export interface AdvertisementEvents {
  registered: [name: string];
  renamed: [change: { from: string; name: string }];
  error: [err: Error];
}

export class Advertisement extends EventEmitter<AdvertisementEvents> {
  private stopped = false;
  private responder: Responder | undefined;

  /** @internal created by Mdns.advertise() */
  constructor(
    private readonly reg: Registration,
    private readonly whenReady: Promise<Responder>,
  ) {
    super();
    reg.on('registered', (name: string) => this.emit('registered', name));
    reg.on('renamed', (change: { from: string; name: string }) => this.emit('renamed', change));
    whenReady.then(
      (responder) => {
        this.responder = responder;
        if (!this.stopped) responder.register(reg);
      },
      (err: unknown) => {
        if (this.listenerCount('error') > 0) this.emit('error', err as Error);
      },
    );
  }

  /** The instance name in use (final after any conflict). */
  get name(): string {
    return this.reg.desc.instance;
  }

  /** `_example._tcp` */
  get type(): string {
    return formatServiceType(this.reg.desc.type);
  }

  get domain(): string {
    return this.reg.desc.domain;
  }

  get port(): number {
    return this.reg.desc.port;
  }

  /** True once probing succeeded and announcements went out. */
  get registered(): boolean {
    return this.reg.state === 'announced';
  }

  /** Replaces the TXT record and re-announces it. Throws ERR_INVALID_TXT for bad data. */
  update(txt: TxtInput): void {
    const strings = encodeTxt(txt);
    if (this.responder) this.responder.updateTxt(this.reg, strings);
    else this.reg.desc = { ...this.reg.desc, txt: strings };
  }

  /** Withdraws the service: sends goodbye packets (TTL 0). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const responder = this.responder ?? (await this.whenReady.catch(() => undefined));
    responder?.unregister(this.reg);
  }
}
