import assert from "node:assert/strict";

import {
  AnchorFrameworkError,
  IDL,
  VaultProgramError,
  type LocatedVaultEvent,
  type VaultErrorName,
  type VaultEventName,
  type VaultEventOf,
} from "../../app/dist/index.js";

/** Awaits a refusal with the program's `name` error, checking the typed error carries the IDL's message. */
export async function expectVaultError(promise: Promise<unknown>, name: VaultErrorName): Promise<VaultProgramError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${name}, but it succeeded`);
  if (!(caught instanceof VaultProgramError)) {
    assert.fail(`expected VaultProgramError ${name}, got ${String(caught)}\n${((caught as { logs?: string[] }).logs ?? []).join("\n")}`);
  }
  assert.equal(caught.errorName, name, `expected ${name}, got ${caught.errorName}: ${caught.logs.join("\n")}`);
  const entry = (IDL as unknown as { errors: { name: string; code: number; msg: string }[] }).errors.find((e) => e.code === caught.code);
  assert.ok(entry, `code ${caught.code} is in the IDL`);
  assert.equal(caught.programMessage, entry.msg);
  assert.ok(caught.message.includes(entry.msg));
  return caught;
}

/** Awaits a refusal in one of Anchor's account checks (e.g. "ConstraintSeeds"). */
export async function expectAnchorError(promise: Promise<unknown>, name: string): Promise<AnchorFrameworkError> {
  let caught: unknown;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected ${name}, but it succeeded`);
  if (!(caught instanceof AnchorFrameworkError)) assert.fail(`expected AnchorFrameworkError ${name}, got ${String(caught)}`);
  assert.equal(caught.errorName, name);
  return caught;
}

/** The single event named `name` among `events`. */
export function eventOf<N extends VaultEventName>(events: LocatedVaultEvent[], name: N): VaultEventOf<N> {
  const found = events.filter((e) => e.name === name);
  assert.equal(found.length, 1, `expected one ${name}, got [${events.map((e) => e.name).join(", ")}]`);
  return found[0]!.data as VaultEventOf<N>;
}

export function eventNames(events: LocatedVaultEvent[]): string[] {
  return events.map((e) => e.name);
}
