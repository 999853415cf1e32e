/**
 * The mDNS attacker of adversarial tests, in a lab namespace: drives mdns-attacker.js (a raw
 * UDP sender and TCP accept-counter) with packets the test built by hand (mdns-packets.ts).
 */
import { fileURLToPath } from 'node:url';
import type { Lab } from '../harness/netns.js';
import { waitForJson, type TrackedProcess } from '../harness/proc.js';

const SCRIPT = fileURLToPath(new URL('./mdns-attacker.js', import.meta.url));

export class MdnsAttacker {
  readonly proc: TrackedProcess;
  #syncs = 0;

  private constructor(proc: TrackedProcess) {
    this.proc = proc;
  }

  static async start(lab: Lab, host: number): Promise<MdnsAttacker> {
    const h = lab.host(host);
    const proc = lab.spawnNode(host, SCRIPT, [h.ipv4 ?? `10.77.0.${host}`], { label: `mdns attacker@h${host}`, stdin: true });
    await waitForJson(proc, (e) => e.ev === 'ready', 20_000);
    return new MdnsAttacker(proc);
  }

  /** Multicasts each packet, in bursts of `burst` every `gapMs`, and resolves once all went out. */
  async send(packets: readonly Buffer[], burst = 25, gapMs = 20): Promise<void> {
    for (let i = 0; i < packets.length; i += burst) {
      for (const p of packets.slice(i, i + burst)) this.proc.writeLine(`send ${p.toString('hex')}`);
      if (i + burst < packets.length) await new Promise((r) => setTimeout(r, gapMs));
    }
    const id = String(++this.#syncs);
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine(`sync ${id}`);
    await waitForJson(this.proc, (e) => e.ev === 'sync' && e.id === id, 20_000, { since: n });
  }

  /** Answers, from now on, every query that asks about `name` with `packet` (an honest responder built by hand). */
  answer(name: string, packet: Buffer): void {
    this.proc.writeLine(`answer ${name} ${packet.toString('hex')}`);
  }

  /** How many queries were answered so far. */
  answered(): number {
    return this.proc.stdoutLines.filter((l) => l.includes('"ev":"answered"')).length;
  }

  /** A TCP listener that counts accepted connections (and closes each at once). */
  async listen(address: string, port: number, tag: string): Promise<void> {
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine(`listen ${address} ${port} ${tag}`);
    const e = await waitForJson<{ ev: string; tag: string; message?: string }>(this.proc, (x) => (x.ev === 'listening' || x.ev === 'error') && x.tag === tag, 10_000, { since: n });
    if (e.ev === 'error') throw new Error(`listen ${address}:${port}: ${e.message ?? ''}`);
  }

  /** A TCP listener that accepts connections and holds them open without a byte (a stalled TLS handshake); open counts are kept per tag, per group and over all ("*"). */
  async tarpit(address: string, port: number, tag: string, group?: string): Promise<void> {
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine(`tarpit ${address} ${port} ${tag}${group ? ` ${group}` : ''}`);
    const e = await waitForJson<{ ev: string; tag: string; message?: string }>(this.proc, (x) => (x.ev === 'listening' || x.ev === 'error') && x.tag === tag, 10_000, { since: n });
    if (e.ev === 'error') throw new Error(`tarpit ${address}:${port}: ${e.message ?? ''}`);
  }

  /** Connections accepted per tag, and for tarpits those open now and the most open at once (since resetMax). */
  async tarpits(): Promise<{ counts: Record<string, number>; open: Record<string, number>; maxOpen: Record<string, number> }> {
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine('counts');
    return waitForJson<{ ev: string; counts: Record<string, number>; open: Record<string, number>; maxOpen: Record<string, number> }>(this.proc, (x) => x.ev === 'counts', 10_000, { since: n });
  }

  /** Starts counting the most tarpit connections open at once afresh (from those open now). */
  async resetMax(): Promise<void> {
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine('resetmax');
    await waitForJson(this.proc, (x) => x.ev === 'resetmax', 10_000, { since: n });
  }

  async counts(): Promise<Record<string, number>> {
    const n = this.proc.stdoutLines.length;
    this.proc.writeLine('counts');
    const e = await waitForJson<{ ev: string; counts: Record<string, number> }>(this.proc, (x) => x.ev === 'counts', 10_000, { since: n });
    return e.counts;
  }
}
