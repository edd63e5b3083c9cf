// Maps Postgres errors that a caller caused to AppErrors, so a rule enforced by the database
// (a trigger, a constraint, a policy) reaches the API as a 4xx with a stable code, never a 500.
import { AppError } from "../http/errors.ts";

interface PgError {
  code?: string;
  message?: string;
  detail?: string;
  constraint_name?: string;
  column_name?: string;
}

function parseDetail(detail: string | undefined): Record<string, unknown> | undefined {
  if (!detail) return undefined;
  try {
    const v = JSON.parse(detail);
    return typeof v === "object" && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The AppError for a database error the caller caused, or undefined for a real failure. */
export function appErrorFromPg(err: unknown): AppError | undefined {
  const e = err as PgError;
  if (!e || typeof e.code !== "string") return undefined;
  const details = parseDetail(e.detail);
  switch (e.code) {
    case "AOS01":
      return new AppError("illegal_transition", e.message ?? "illegal status transition", details);
    case "AOS03":
      // Never say which client held the lead: that is another tenant's data.
      return new AppError("lead_unavailable", "this lead is in its cool-off period and cannot be assigned yet");
    case "AOS04":
      return new AppError("bad_request", e.message ?? "invalid initial status", details);
    case "AOS06":
      return new AppError("not_found", e.message ?? "not found", details);
    case "AOS07":
      // a state rule of campaigns, approvals and pauses (the message says which)
      return new AppError("conflict", e.message ?? "not allowed in the current state", details);
    case "23505":
      if (e.constraint_name === "lead_assignments_one_active_per_lead") {
        return new AppError("lead_unavailable", "this lead is already being worked for another client");
      }
      return new AppError("conflict", "a record with these values already exists", {
        constraint: e.constraint_name,
      });
    case "23503":
      return new AppError("bad_request", "a referenced record does not exist", { constraint: e.constraint_name });
    case "23514":
    case "23502":
    case "22P02":
    case "22001":
    case "22007":
    case "22008":
      return new AppError("validation_failed", e.message ?? "invalid value", {
        constraint: e.constraint_name,
        column: e.column_name,
      });
    case "42501":
      return new AppError("forbidden", "you are not allowed to do this");
    default:
      return undefined;
  }
}
