/**
 * Buffer views over part of a received ArrayBuffer, for the receive paths that hand an app one
 * view per message (millions per second for small messages).
 *
 * Node's `Buffer#subarray` reads `this.buffer` (a C++ builtin that may first materialise the
 * ArrayBuffer) and `this.byteOffset` on every call before it builds the view. A receive loop
 * that walks many messages in one frame can read the ArrayBuffer and offset once and build each
 * view directly: on Node 20 that is about 17-20 ns a view instead of about 45 (a loop of 5 M
 * views of 100 bytes).
 *
 * The views are built with Node's own Buffer class, FastBuffer, which Node exposes as
 * `Buffer[Symbol.species]` (what TypedArray methods such as `map` use to build Buffers). So
 * they are ordinary Buffers: prototype `Buffer.prototype`, equal under `assert.deepStrictEqual`
 * to any Buffer with the same bytes. Should a Node version not expose it, a subclass whose
 * prototype inherits from `Buffer.prototype` stands in (`Buffer.isBuffer` and every method
 * still work; only the prototype differs).
 */
type ViewConstructor = new (arrayBuffer: ArrayBuffer, byteOffset: number, length: number) => Buffer;

function nodeFastBuffer(): ViewConstructor | undefined {
  const species = (Buffer as unknown as Record<symbol, unknown>)[Symbol.species];
  if (typeof species !== 'function' || species.prototype !== Buffer.prototype) return undefined;
  const C = species as ViewConstructor;
  try {
    const probe = new C(new ArrayBuffer(4), 1, 2);
    return Buffer.isBuffer(probe) && probe.length === 2 && probe.byteOffset === 1 ? C : undefined;
  } catch {
    return undefined;
  }
}

function fallback(): ViewConstructor {
  class BufferView extends Uint8Array {}
  Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
  Object.defineProperty(BufferView.prototype, 'constructor', { value: Buffer, writable: true, configurable: true, enumerable: false });
  return BufferView as unknown as ViewConstructor;
}

const View: ViewConstructor = nodeFastBuffer() ?? fallback();

/**
 * A Buffer viewing `length` bytes of `arrayBuffer` from `byteOffset` (absolute, not relative to
 * another view). The caller checked the bounds; the typed-array constructor still throws a
 * RangeError for any that are wrong, so a mistake cannot read outside the ArrayBuffer.
 */
export function bufferView(arrayBuffer: ArrayBufferLike, byteOffset: number, length: number): Buffer {
  return new View(arrayBuffer as ArrayBuffer, byteOffset, length);
}
