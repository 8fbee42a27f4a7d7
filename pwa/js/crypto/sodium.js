// The one place that loads libsodium. Every other module imports `sodium` from here, so the
// library is ready (its WebAssembly compiled) before any construction runs.
//
// Only a bare name is imported: Node resolves it from pwa/node_modules, and the browser resolves it
// through the page's import map (which must also map `libsodium-sumo`, imported by the ESM build).

import sodium from 'libsodium-wrappers-sumo';

await sodium.ready;

export default sodium;
