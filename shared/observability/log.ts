// Structured JSON logs, one object per line, each carrying the request id when there is one.
import { readEnv } from "../config/env.ts";

type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level | "silent", number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

function threshold(): number {
  const level = (readEnv("LOG_LEVEL") ?? "info") as Level | "silent";
  return ORDER[level] ?? ORDER.info;
}

export type LogFields = Record<string, unknown>;

/** Writes one JSON log line: {"level","msg","time",...fields}. */
export function log(level: Level, msg: string, fields: LogFields = {}): void {
  if (ORDER[level] < threshold()) return;
  const line = JSON.stringify({ level, msg, time: new Date().toISOString(), ...fields });
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}

/** A logger bound to fields (function name, request id) that every line repeats. */
export function logger(bound: LogFields) {
  return {
    debug: (msg: string, f?: LogFields) => log("debug", msg, { ...bound, ...f }),
    info: (msg: string, f?: LogFields) => log("info", msg, { ...bound, ...f }),
    warn: (msg: string, f?: LogFields) => log("warn", msg, { ...bound, ...f }),
    error: (msg: string, f?: LogFields) => log("error", msg, { ...bound, ...f }),
  };
}
export type Logger = ReturnType<typeof logger>;
