// The part of the WebAssembly JavaScript API the kernels use. The repository compiles against
// ES2023 and @types/node only (no DOM library, which is where TypeScript declares these).
declare global {
  namespace WebAssembly {
    interface MemoryDescriptor {
      /** Pages of 64 KiB. */
      initial: number;
      maximum?: number;
      shared?: boolean;
    }
    class Memory {
      constructor(descriptor: MemoryDescriptor);
      /** A SharedArrayBuffer for shared memories; a new object after every grow. */
      readonly buffer: ArrayBuffer | SharedArrayBuffer;
      grow(deltaPages: number): number;
    }
    class Module {
      constructor(bytes: Uint8Array<ArrayBuffer>);
    }
    class Instance {
      constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
    function validate(bytes: Uint8Array<ArrayBuffer>): boolean;
  }
}
export {};
