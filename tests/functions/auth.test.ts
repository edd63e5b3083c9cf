// Authentication at the gateway (verify_jwt) and in the functions.
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import { call, getStack, makeUser } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await getStack();
});

function sign(claims: Record<string, unknown>, secret: string, expSeconds = 3600) {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds).sign(new TextEncoder().encode(secret));
}

describe("bearer JWTs", () => {
  it("no token is a 401 at the gateway for verify_jwt functions; health needs none", async () => {
    const res = await call(stack, "leads");
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("unauthorized");
    expect((await call(stack, "health")).status).toBe(200);
  });

  it("a token signed with another secret is a 401", async () => {
    const user = await makeUser(stack);
    const forged = await sign({ sub: user.userId, role: "authenticated" }, "x".repeat(48));
    expect((await call(stack, "leads", { token: forged })).status).toBe(401);
  });

  it("an expired token is a 401 that says so", async () => {
    const user = await makeUser(stack);
    const expired = await sign({ sub: user.userId, role: "authenticated" }, stack.secrets.jwtSecret, -60);
    const res = await call(stack, "leads", { token: expired });
    expect(res.status).toBe(401);
  });

  it("the anon key passes the gateway but is not a user: 401 from the function", async () => {
    const res = await call(stack, "leads", { token: stack.anonKey });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/signed-in user/);
  });

  it("a valid token for a user that no longer exists is a 401", async () => {
    const user = await makeUser(stack);
    await db()`delete from auth.users where id = ${user.userId}`;
    const res = await call(stack, "leads", { token: user.token });
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/does not exist/);
  });
});
