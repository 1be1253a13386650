/**
 * A shared WebAssembly memory that a caller's big byte buffers (the executor's raw input slots and TIES'
 * output slots) are carved from, so the WebAssembly ties kernel on each pool worker reads the inputs
 * and writes the output where they lie instead of copying every block in and out of its own memory
 * (ties-banded-wasm.ts; ~1.3 ns an element of the ~5.7). The views it hands out are ordinary shared
 * Uint8Arrays: every JS kernel takes them as before. Each worker's module instance grows the memory by
 * its own scratch pages; the caller's part is allocated up front, so it never moves.
 */

// The WebAssembly API as used here (the workspace's TypeScript libs declare no WebAssembly global).
declare const WebAssembly: {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => {
    readonly buffer: ArrayBuffer;
  };
};

/** What a kernel call carries to a worker: the memory, and a process-unique id to cache its instance by. */
export interface KernelMemoryRef {
  readonly memory: object;
  readonly id: number;
}

const PAGE = 65536;
/** The module's declared maximum (assembly build flag --maximumMemory): 4 GiB of 64 KiB pages. */
const MAX_PAGES = 65536;
/** Pages left for the workers' scratch (each instance grows the memory by a few pages). */
const SCRATCH_PAGES = 1024;
/** Allocations start on this boundary (the kernels' v128 loads are fastest aligned). */
const ALIGN = 64;

let nextId = 1;

export class KernelMemory {
  private next = 0;
  /** The SharedArrayBuffer objects of the views handed out (a view of the memory is one of them). */
  private readonly handedOut = new WeakSet<ArrayBufferLike>();

  private constructor(
    private readonly memory: { readonly buffer: ArrayBuffer },
    private readonly bytes: number,
    readonly id: number,
  ) {}

  /**
   * A memory of `bytes` for the caller (zero pages until touched), or null where it cannot be made: more
   * than the module can address, or no shared WebAssembly memory on this runtime.
   */
  static create(bytes: number): KernelMemory | null {
    const pages = Math.ceil(bytes / PAGE);
    if (!(pages >= 1) || pages + SCRATCH_PAGES > MAX_PAGES) return null;
    try {
      const memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
      return new KernelMemory(memory, pages * PAGE, nextId++);
    } catch {
      return null; // no shared memory (or no room to reserve it): the caller's buffers are plain
    }
  }

  /** `bytes` of the memory (aligned, never handed out before), or null when it has no room left. */
  alloc(bytes: number): Uint8Array | null {
    const at = Math.ceil(this.next / ALIGN) * ALIGN;
    if (at + bytes > this.bytes) return null;
    this.next = at + bytes;
    const view = new Uint8Array(this.memory.buffer, at, bytes);
    this.handedOut.add(view.buffer);
    return view;
  }

  /** Whether `view` lies in this memory (a view of an alloc'ed buffer, or of a part of one). */
  holds(view: ArrayBufferView): boolean {
    return this.handedOut.has(view.buffer);
  }

  /** The reference a kernel call carries. */
  get ref(): KernelMemoryRef {
    return { memory: this.memory, id: this.id };
  }
}
