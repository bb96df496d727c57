/**
 * The only module that calls libnftables: to list and delete the nftables tables CRIU's `--network-lock nftables`
 * leaves behind (src/criu/network-lock.ts). No `nft` tool is needed: the library is the one CRIU itself uses (its
 * private build carries it in <criu>/lib), so wherever CRIU can make a table, stasis can remove it. koffi and the
 * library are loaded on the first call.
 *
 * @example
 *   nftCommand("list tables"); // "table inet CRIU-7106451f-704c-4649-b4\n"
 */
import { createRequire } from "node:module";
import { StasisError } from "../errors.js";

type Koffi = typeof import("koffi");
type Fn = ReturnType<ReturnType<Koffi["load"]>["func"]>;

interface LibNftables {
  ctxNew: Fn;
  ctxFree: Fn;
  bufferOutput: Fn;
  bufferError: Fn;
  run: Fn;
  output: Fn;
  error: Fn;
}

let loaded: LibNftables | undefined;

/** Where to look for the library, best first: beside a private CRIU build (`libDirs`), then the system's. */
function load(libDirs: string[]): LibNftables {
  if (loaded) return loaded;
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const tried: string[] = [];
  for (const path of [...libDirs.map((d) => `${d}/libnftables.so.1`), "libnftables.so.1"]) {
    let lib: ReturnType<Koffi["load"]>;
    try {
      lib = koffi.load(path);
    } catch (err) {
      tried.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    loaded = {
      ctxNew: lib.func("void *nft_ctx_new(uint32_t flags)"),
      ctxFree: lib.func("void nft_ctx_free(void *ctx)"),
      bufferOutput: lib.func("int nft_ctx_buffer_output(void *ctx)"),
      bufferError: lib.func("int nft_ctx_buffer_error(void *ctx)"),
      run: lib.func("int nft_run_cmd_from_buffer(void *ctx, const char *buf)"),
      output: lib.func("const char *nft_ctx_get_output_buffer(void *ctx)"),
      error: lib.func("const char *nft_ctx_get_error_buffer(void *ctx)"),
    };
    return loaded;
  }
  throw new StasisError("E_TOOL_MISSING", `cannot load libnftables (${tried.join("; ")})`, {
    hint: "install libnftables1 (CRIU's --network-lock nftables needs it too), or build CRIU with `./setup.sh`",
  });
}

/** Runs one nft command (nft's own syntax) and returns what it printed; a failed command is E_IO with nft's error. */
export function nftCommand(cmd: string, libDirs: string[] = []): string {
  const l = load(libDirs);
  const ctx = l.ctxNew(0) as unknown;
  if (ctx === null) throw new StasisError("E_IO", "libnftables: nft_ctx_new failed");
  try {
    l.bufferOutput(ctx);
    l.bufferError(ctx);
    const rc = l.run(ctx, cmd) as number;
    if (rc !== 0) {
      const error = String(l.error(ctx) ?? "").trim();
      const details = { command: cmd, nftError: error };
      throw new StasisError("E_IO", `nft ${cmd}: ${error || `failed (${rc})`}`, { details });
    }
    return String(l.output(ctx) ?? "");
  } finally {
    // Invariant: every context made here is freed (its buffers with it), whether the command worked or not.
    l.ctxFree(ctx);
  }
}
