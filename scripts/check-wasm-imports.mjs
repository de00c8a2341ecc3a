// Fails unless the module imports only the proxy-wasm ABI (env.proxy_*) and WASI preview 1:
// anything else would fail to load in Envoy, or means an unexpected dependency crept in.
import { readFile } from "node:fs/promises";
import process from "node:process";

const path = process.argv[2];
const module = await WebAssembly.compile(await readFile(path));
const imports = WebAssembly.Module.imports(module);
const bad = imports.filter(
  (i) => !((i.module === "env" && i.name.startsWith("proxy_")) || i.module === "wasi_snapshot_preview1"),
);
const exports = WebAssembly.Module.exports(module).map((e) => e.name);
for (const needed of ["proxy_on_context_create", "proxy_on_request_headers", "proxy_on_configure"]) {
  if (!exports.includes(needed)) bad.push({ module: "(export)", name: needed + " missing" });
}
if (bad.length) {
  console.error("unexpected imports/exports:", bad);
  process.exit(1);
}
console.log(`${path}: ${imports.length} imports, all env.proxy_* or wasi_snapshot_preview1`);
