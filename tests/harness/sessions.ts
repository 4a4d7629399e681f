// Opening sessions instruction by instruction, for the tests of single instructions.
import { Keypair, type PublicKey } from "@solana/web3.js";

import {
  createSessionInstruction,
  newSessionId,
  sessionRef,
  SOL as SOL_ASSET,
  vaultAddress,
  type Asset,
  type CreateSessionParams,
  type SessionRef,
} from "../../app/dist/index.js";
import { send, SOL, type Landed, type TestChain } from "./chain.js";

export interface OpenedSession {
  parent: Keypair;
  delegate: Keypair;
  ref: SessionRef;
  vault: PublicKey;
  landed: Landed;
}

export type OpenOptions = Partial<Omit<CreateSessionParams, "parent" | "delegate">> & {
  parent?: Keypair;
  delegate?: Keypair;
  asset?: Asset;
};

/** Defaults: 1 SOL approved, 0.5 SOL per trade, 1 SOL deposited, 0.01 SOL fee top-up, one hour. */
export async function openSession(chain: TestChain, options: OpenOptions = {}): Promise<OpenedSession> {
  const parent = options.parent ?? (await chain.newWallet(20 * SOL));
  const delegate = options.delegate ?? Keypair.generate();
  const sessionId = options.sessionId ?? newSessionId();
  const asset = options.asset ?? SOL_ASSET;
  const { parent: _p, delegate: _d, ...rest } = options;
  const ix = createSessionInstruction({
    approvedAmount: BigInt(SOL),
    perTradeCap: BigInt(SOL / 2),
    durationSecs: 3600,
    initialDeposit: BigInt(SOL),
    feeTopUp: 10_000_000n,
    ...rest,
    parent: parent.publicKey,
    delegate: delegate.publicKey,
    sessionId,
    asset,
  });
  const landed = await send(chain, [ix], [parent]);
  const ref = sessionRef(parent.publicKey, sessionId, asset);
  return { parent, delegate, ref, vault: vaultAddress(parent.publicKey, sessionId), landed };
}
