// Marks dist/cjs as CommonJS, so that Node reads its .js files as such inside this ESM package.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), JSON.stringify({ type: "commonjs" }) + "\n");
