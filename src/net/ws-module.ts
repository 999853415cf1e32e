/**
 * The `ws` package, loaded on first use: only the WebSocket transport needs it, and it costs
 * ~13 MiB of RSS in every process that imports the library otherwise.
 */
type WsModule = typeof import('ws');

let ws: Promise<WsModule> | undefined;

export function loadWs(): Promise<WsModule> {
  ws ??= import('ws');
  return ws;
}
