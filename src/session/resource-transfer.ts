/**
 * Resources (Multipeer Connectivity's sendResource / didStartReceivingResource /
 * didFinishReceivingResource): the entry point the session imports. A resource
 * travels on its own stream (wire format: resource-wire.ts), is written straight to a
 * temporary file in the download directory, verified (size, SHA-256) and renamed into
 * place under its sent name (resource-store.ts).
 */
export { ResourceManager, type ResourceManagerOptions } from './resource-manager.js';
export { ResourceTransfer, type SendResourceOptions, type SentResource, type FolderSummary } from './resource-send.js';
export type { FolderFileProgress } from './resource-progress.js';
export type { SkippedEntry, FolderEntry } from './resource-folder-manifest.js';
export { IncomingResource, type ReceivedResource, type ResourceOffer, type AcceptResource, type RefusedOffer } from './resource-receive.js';
export { ResourceStore, DEFAULT_FREE_SPACE_FLOOR, type ResourceStoreOptions, type FreeSpaceFloor, type RemovedLeftover } from './resource-store.js';
export { DEFAULT_ACCEPT_TIMEOUT_MS, DEFAULT_RESUME_TIMEOUT_MS } from './resource-send.js';
export { PARTIAL_MAX_AGE_MS, type PartialResource } from './resource-partial.js';
export type { ResourceProgress, TransferState } from './resource-progress.js';
export { resourceChannel } from './resource-progress.js';
export { validateResourceName, resourceNameProblem, MAX_RESOURCE_NAME_BYTES } from './resource-name.js';
