/**
 * The sending half of a resource test pair, shared by resource-transfer.test.ts and
 * resource-resume.test.ts: a ResourceManager whose every stream is a loopback socket pair
 * handed to `receiver` (as from 'sender-peer'). Both managers are closed after the test.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { socketPair, type Ctx } from '../../harness/loopback.js';
import { ResourceManager } from '../../../src/session/resource-manager.js';

export function senderTo(t: Ctx, receiver: ResourceManager<string>): { sender: ResourceManager<string>; receiverSocket: () => Socket | undefined } {
  let last: Socket | undefined;
  const sender = new ResourceManager<string>({
    open: async () => {
      const [a, b] = await socketPair(t);
      last = b;
      receiver.receive(b, 'sender-peer');
      return a;
    },
    announce: () => assert.fail('sender never receives'),
  });
  t.after(async () => {
    await sender.close();
    await receiver.close();
  });
  return { sender, receiverSocket: () => last };
}
