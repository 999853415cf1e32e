/**
 * The receive side of a ready Connection: what its channel delivers goes into the bounded
 * receive queue, counted, with the message-size limit a received message may switch
 * (setMaxMessageSizeAfter()).
 */
import type { PeerlinkError } from '../errors.js';
import type { ChannelSink } from './channel.js';
import type { Parameters } from './parameters.js';
import type { ReceiveQueue } from './receive-queue.js';
import type { ConnectionCounters } from './report.js';

/** The receive limits set by setMaxMessageSize() / setMaxMessageSizeAfter(). */
export interface ReceiveLimits {
  /** Set by setMaxMessageSizeAfter(): the limit to apply once a received message passes `test`. */
  after: { test: (message: Buffer) => boolean; n: number } | undefined;
  /** Set by setMaxMessageSize() (applied to the channel at ready when set before it). */
  limit: number | undefined;
}

/** The Connection's side of the sink. */
export interface SinkHost {
  setMaxMessageSize(n: number): void;
  closed(err: PeerlinkError | undefined): void;
  rtt(ms: number): void;
}

export function connectionSink(parameters: Parameters, counters: ConnectionCounters, queue: ReceiveQueue, limits: ReceiveLimits, host: SinkHost): ChannelSink {
  return {
    data: (chunk) => {
      counters.bytesIn += chunk.length;
      queue.push(chunk);
    },
    message: (msg) => {
      counters.bytesIn += msg.length;
      counters.messagesIn++;
      if (limits.after !== undefined && limits.after.test(msg)) host.setMaxMessageSize(limits.after.n);
      if (parameters.transport === 'udp' && queue.length >= (parameters.udp?.receiveQueueLimit ?? 1024)) {
        // UDP has no backpressure: a reader that falls behind loses datagrams, counted.
        counters.dropped++;
        return;
      }
      queue.push(msg);
    },
    part: (data, complete) => {
      counters.bytesIn += data.length;
      if (complete) counters.messagesIn++;
      queue.push(data, complete);
    },
    end: () => queue.end(),
    closed: (err) => host.closed(err),
    rtt: (ms) => host.rtt(ms),
    keepaliveSent: () => counters.keepalivesSent++,
  };
}
