// INVITE (0x78) body: u32 timeout ms, u16 context length, context — lengths checked before use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeInvite, encodeInvite, inviteContext } from '../../../src/session/invitations.js';
import { resolveBudgets } from '../../../src/session/budgets.js';
import { isPeerlinkError } from '../../../src/errors.js';

test('INVITE round trip, and refusals: short, length mismatch, context over the budget', () => {
  const body = encodeInvite(30_000, Buffer.from('table 7'));
  assert.deepEqual(decodeInvite(body, 1024), { timeoutMs: 30_000, context: Buffer.from('table 7') });
  assert.deepEqual(decodeInvite(encodeInvite(1, Buffer.alloc(0)), 0 + 1), { timeoutMs: 1, context: Buffer.alloc(0) });
  assert.throws(() => decodeInvite(Buffer.alloc(5), 1024), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
  assert.throws(() => decodeInvite(Buffer.concat([body, Buffer.of(0)]), 1024), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
  assert.throws(() => decodeInvite(body.subarray(0, body.length - 1), 1024), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
  assert.throws(() => decodeInvite(encodeInvite(1, Buffer.alloc(11)), 10), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
  assert.equal(inviteContext('é', 2).length, 2);
  assert.throws(() => inviteContext('é', 1), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
});

test('invitationContextBytes must fit the first-frame budget (an INVITE arrives before the inviter is accepted)', () => {
  assert.equal(resolveBudgets({ invitationContextBytes: 2041 }).invitationContextBytes, 2041);
  assert.throws(() => resolveBudgets({ invitationContextBytes: 2042 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.equal(resolveBudgets({ firstFrameBytes: 70_000, invitationContextBytes: 65_535 }).invitationContextBytes, 65_535);
  assert.throws(() => resolveBudgets({ firstFrameBytes: 70_000, invitationContextBytes: 65_536 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
});
