export * from './types.js';
export { decodePacket, MAX_PACKET_BYTES, MAX_RECORDS } from './decode.js';
export { encodePacket, PacketWriter, DEFAULT_MAX_SEND_BYTES } from './encode.js';
export { escapeLabel, joinLabels, splitName, nameKey, sameName, MAX_LABEL_BYTES, MAX_NAME_BYTES } from './name.js';
export { recordKey, rrsetKey, sameRecord, compareRecords, compareProbeSets, rdataOf } from './records.js';
