import { defineConfig } from "vitest/config";

// One process runs every test file in turn and shares one local stack (tests/helpers/stack.ts):
// an embedded PGlite database accepts a single connection, so the stack and the tests share it.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    pool: "forks",
    // Node 20 has WebSocket only behind a flag; supabase-js needs the constructor to exist.
    poolOptions: { forks: { singleFork: true, isolate: false, execArgv: ["--experimental-websocket"] } },
    isolate: false,
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent" },
  },
});
