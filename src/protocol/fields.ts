/**
 * Field checks for untrusted JSON objects, shared by the two surfaces that read them: client
 * commands (src/gateway/validate.ts) and server API params (src/api/params.ts). Pure; each
 * surface passes the error it throws, so mapping to its own wire stays at its one boundary
 * (STYLE habit 7) while the rules live here once.
 *
 * Centrifugo decodes with protobuf JSON rules, where a missing field is its zero value: here a
 * missing or null field is "not set" (undefined), and a present one of the wrong type is
 * refused with a detail naming the field (for logs only, never for the client).
 *
 * Imports nothing.
 */

/** Builds the error a surface throws for a malformed field. */
export type FieldError = (detail: string) => Error;

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An integer JSON can carry exactly (a uint64 offset is exact only up to 2^53, PROTOCOL.md A.2). */
export function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

/** A non-negative safe integer: offsets, ids. */
export function isUint(value: unknown): value is number {
  return isInt(value) && value >= 0;
}

/** Missing and JSON null both mean "not set". */
function isUnset(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/** The checks, each throwing what `fail` builds. */
export interface FieldChecks {
  string(value: unknown, field: string): string | undefined;
  bool(value: unknown, field: string): boolean | undefined;
  int(value: unknown, field: string): number | undefined;
  uint(value: unknown, field: string): number | undefined;
  stringList(value: unknown, field: string): string[] | undefined;
}

export function fieldChecks(fail: FieldError): FieldChecks {
  /** One check: unset passes as undefined, a value of the right kind as itself. */
  const check =
    <T>(is: (value: unknown) => value is T, what: string) =>
    (value: unknown, field: string): T | undefined => {
      if (isUnset(value)) return undefined;
      if (!is(value)) throw fail(`${field} must be ${what}`);
      return value;
    };
  return {
    string: check((v): v is string => typeof v === 'string', 'a string'),
    bool: check((v): v is boolean => typeof v === 'boolean', 'a boolean'),
    int: check(isInt, 'an integer'),
    uint: check(isUint, 'a non-negative integer'),
    stringList: check(isStringList, 'a list of strings'),
  };
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}
