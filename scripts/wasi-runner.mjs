// Runs a wasm32-wasip1 program (a test binary built by `cargo test --target wasm32-wasip1`)
// under Node's built-in WASI implementation and exits with its exit code.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process from "node:process";

const [wasmPath, ...args] = process.argv.slice(2);
if (!wasmPath) {
  console.error("usage: wasi-runner.mjs <module.wasm> [args...]");
  process.exit(2);
}
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  env: { RUST_BACKTRACE: "0" },
  preopens: {},
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
try {
  process.exitCode = wasi.start(instance);
} catch (err) {
  // A Rust panic aborts the module with a trap: report it as a failure.
  console.error(`wasm trap: ${err.message}`);
  process.exitCode = 101;
}
