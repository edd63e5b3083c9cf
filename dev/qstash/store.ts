// JSON-file persistence for the QStash emulator: load once, then debounced atomic saves
// (write a temp file, rename over the target) so a crash never leaves a half-written store.
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export class JsonFileStore<T> {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => T,
    private readonly debounceMs = 50,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Returns the stored value, or undefined if there is no file yet. */
  async load(): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      // Keep the unreadable file for inspection instead of silently overwriting it.
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside).catch(() => {});
      this.onError(new Error(`store ${this.path} is not valid JSON (moved to ${aside}): ${String(err)}`));
      return undefined;
    }
  }

  /** Mark dirty; the snapshot is taken and written after a short debounce. */
  save(): void {
    this.dirty = true;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeNow();
    }, this.debounceMs);
  }

  /** Write any pending change now and wait until it is on disk. */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.writeNow();
  }

  private writeNow(): Promise<void> {
    // Writes are chained so two renames never race; each takes a fresh snapshot.
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const tmp = `${this.path}.tmp-${crypto.randomUUID()}`;
      try {
        await mkdir(dirname(this.path), { recursive: true });
        await writeFile(tmp, JSON.stringify(this.snapshot()), "utf8");
        await rename(tmp, this.path);
      } catch (err) {
        this.dirty = true;
        await unlink(tmp).catch(() => {});
        this.onError(err);
      }
    });
    return this.writing;
  }
}
