// Polls until fn returns something truthy (and returns it), or fails naming what it waited for.
export async function until<T>(what: string, fn: () => Promise<T | false | undefined>, ms = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
