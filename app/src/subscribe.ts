// Watching a session: connection.onAccountChange, decoded into SessionState, with the fields that
// changed, a notification when the session expires (which changes no account), and one when the
// vault is closed by a cleanup.
import type { AccountInfo, Commitment, Context, PublicKey } from "@solana/web3.js";

import { decodeVault, deriveSessionState, type SessionState, type SessionStatus, type VaultAccount } from "./accounts.js";
import type { AccountReader, AccountSubscriber } from "./connection.js";
import { PROGRAM_ID } from "./constants.js";

export interface SessionUpdate {
  /** null once the vault is closed (cleaned up). */
  state: SessionState | null;
  previous: SessionState | null;
  status: SessionStatus;
  /** Vault fields whose value changed since the previous update (all fields on the first). */
  changed: (keyof VaultAccount)[];
  /** The slot of the account change, when the update comes from one. */
  slot: number | null;
  cause: "initial" | "account" | "expiry";
}

export interface SubscribeOptions {
  commitment?: Commitment;
  programId?: PublicKey;
  /** The clock used to judge expiry, unix seconds (default: the local clock). */
  now?: () => number;
  /** Read the account once at once and report it (default true, when the connection can read). */
  initial?: boolean;
  /** Report the moment the session expires (default true). */
  notifyExpiry?: boolean;
  /** Called when reading or decoding fails; the subscription stays open. */
  onError?: (error: unknown) => void;
}

export interface SessionSubscription {
  unsubscribe(): Promise<void>;
}

function same(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return a.length === b.length && a.every((x, i) => x === b[i]);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === "object" && typeof (a as { equals?: unknown }).equals === "function") {
    return (a as { equals(o: unknown): boolean }).equals(b);
  }
  return a === b;
}

/** The vault fields that differ between two decoded accounts. */
export function changedFields(previous: VaultAccount | null, next: VaultAccount | null): (keyof VaultAccount)[] {
  if (previous === null || next === null) {
    const any = next ?? previous;
    return any ? (Object.keys(any) as (keyof VaultAccount)[]) : [];
  }
  return (Object.keys(next) as (keyof VaultAccount)[]).filter((k) => !same(previous[k], next[k]));
}

/**
 * The longest delay `setTimeout` honours: 2^31-1 ms (about 24.8 days). Browsers and Node fire a
 * longer one after 1 ms, so a session's expiry timer is armed in steps of at most this long.
 */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** Reports every change of a session's vault until `unsubscribe()`. */
export function subscribeToSession(
  connection: AccountSubscriber & Partial<AccountReader>,
  vault: PublicKey,
  onUpdate: (update: SessionUpdate) => void,
  options: SubscribeOptions = {},
): SessionSubscription {
  const programId = options.programId ?? PROGRAM_ID;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  let previous: SessionState | null = null;
  let closed = false;
  let active = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const report = options.onError ?? (() => undefined);

  const scheduleExpiry = (state: SessionState | null) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (options.notifyExpiry === false || state === null || state.status !== "active") return;
    const ms = Math.min(Math.max(0, (state.account.expiresAt - now()) * 1000) + 50, MAX_TIMER_DELAY_MS);
    timer = setTimeout(() => {
      timer = undefined;
      if (!active || previous === null) return;
      const at = now();
      // Fired early: a step of a long session, or a clock that runs behind; arm the rest.
      if (at < previous.account.expiresAt) return scheduleExpiry(previous);
      const state = deriveSessionState(previous.address, previous.account, at, previous.lamports, programId);
      const update: SessionUpdate = { state, previous, status: state.status, changed: [], slot: null, cause: "expiry" };
      previous = state;
      onUpdate(update);
    }, ms);
    (timer as { unref?: () => void }).unref?.();
  };

  const handle = (info: AccountInfo<Uint8Array> | null, slot: number | null, cause: SessionUpdate["cause"]) => {
    if (!active) return;
    const gone = info === null || info.lamports === 0 || !info.owner.equals(programId) || info.data.length === 0;
    if (gone) {
      if (closed) return; // reported once
      closed = true;
      const update: SessionUpdate = { state: null, previous, status: "closed", changed: changedFields(previous?.account ?? null, null), slot, cause };
      previous = null;
      scheduleExpiry(null);
      onUpdate(update);
      return;
    }
    let state: SessionState;
    try {
      state = deriveSessionState(vault, decodeVault(info.data), now(), info.lamports, programId);
    } catch (e) {
      report(e);
      return;
    }
    closed = false;
    const update: SessionUpdate = {
      state,
      previous,
      status: state.status,
      changed: changedFields(previous?.account ?? null, state.account),
      slot,
      cause,
    };
    previous = state;
    scheduleExpiry(state);
    onUpdate(update);
  };

  const id = connection.onAccountChange(vault, (info: AccountInfo<Uint8Array>, ctx: Context) => handle(info, ctx.slot, "account"), {
    commitment: options.commitment ?? "confirmed",
  });

  if (options.initial !== false && typeof connection.getAccountInfo === "function") {
    connection.getAccountInfo(vault, options.commitment ?? "confirmed").then(
      (info) => {
        // An account notification may have arrived first; it is newer.
        if (previous === null && !closed) handle(info, null, "initial");
      },
      (e) => report(e),
    );
  }

  return {
    async unsubscribe() {
      if (!active) return;
      active = false;
      if (timer !== undefined) clearTimeout(timer);
      await connection.removeAccountChangeListener(id);
    },
  };
}
