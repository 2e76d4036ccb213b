// The types are generated from the gateway's OpenAPI document and
// committed: this regenerates them from the document as it is now and
// fails when the committed file differs (then run `npm run generate`).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { repoRoot } from "./harness.js";

const pkg = path.join(repoRoot, "clients", "typescript");

describe("generated types", () => {
  it("match gateway/openapi.json", async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), "asyncgw-ts-openapi-"));
    try {
      const out = path.join(tmp, "openapi.ts");
      const bin = path.join(pkg, "node_modules", ".bin", "openapi-typescript");
      await new Promise<void>((resolve, reject) =>
        execFile(bin, [path.join(repoRoot, "gateway", "openapi.json"), "-o", out], { cwd: pkg, timeout: 60_000 }, (err, _o, stderr) =>
          err ? reject(new Error(`openapi-typescript failed (run npm ci in clients/typescript): ${err.message}\n${stderr}`)) : resolve(),
        ),
      );
      const fresh = await readFile(out, "utf8");
      const committed = await readFile(path.join(pkg, "src", "generated", "openapi.ts"), "utf8");
      assert.ok(
        fresh === committed,
        "src/generated/openapi.ts is not what gateway/openapi.json generates: run `make ts-generate` (npm run generate in clients/typescript), check that the client still builds, and commit the file",
      );
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("are what the package's types come from", async () => {
    const types = await readFile(path.join(pkg, "src", "types.ts"), "utf8");
    assert.match(types, /from "\.\/generated\/openapi\.js"/);
    assert.ok(fileURLToPath(import.meta.url).includes(path.join("build-test", "test")));
  });
});
