// Runs flow.ts against a live server (tests/test_api_clients.py): TypeScript's own transpiler
// strips the types (type-checking is tsc's job, done before), then statisticsFlow runs with
// Node's fetch and its outcome is printed as JSON.
//   TASKCENTER_URL=http://127.0.0.1:8000 TASKCENTER_TOKEN=<key> node run.mjs <dir>/flow.ts
// <dir> holds api.d.ts and a node_modules (or is this folder).
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import ts from "typescript";

const source = process.argv[2];
const { outputText } = ts.transpileModule(readFileSync(source, "utf8"), {
  compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
});
const compiled = source.replace(/\.ts$/, ".mjs");
writeFileSync(compiled, outputText);
const { statisticsFlow } = await import(pathToFileURL(compiled).href);
console.log(JSON.stringify(await statisticsFlow(process.env.TASKCENTER_URL, process.env.TASKCENTER_TOKEN)));
