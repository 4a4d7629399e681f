// SPL Token and Token-2022 set-up for the tests, with spl-token's instruction builders.
import {
  ExtensionType,
  TOKEN_2022_PROGRAM_ID,
  TOKEN_PROGRAM_ID,
  createAssociatedTokenAccountIdempotentInstruction,
  createInitializeMint2Instruction,
  createInitializePermanentDelegateInstruction,
  createInitializeTransferFeeConfigInstruction,
  createMintToInstruction,
  getAssociatedTokenAddressSync,
  getMintLen,
  getTransferFeeAmount,
  unpackAccount,
} from "@solana/spl-token";
import { Keypair, PublicKey, SystemProgram, type TransactionInstruction } from "@solana/web3.js";

import { splToken, type Asset } from "../../app/dist/index.js";
import { send, type TestChain } from "./chain.js";

export interface TestMint {
  mint: PublicKey;
  authority: Keypair;
  tokenProgram: PublicKey;
  decimals: number;
  asset: Asset;
}

export interface MintOptions {
  token2022?: boolean;
  decimals?: number;
  /** Token-2022 transfer fee. */
  transferFee?: { basisPoints: number; maximumFee: bigint };
  /** Token-2022 permanent delegate (a mint a vault refuses). */
  permanentDelegate?: PublicKey;
}

export async function createMint(chain: TestChain, payer: Keypair, options: MintOptions = {}): Promise<TestMint> {
  const token2022 = options.token2022 || options.transferFee !== undefined || options.permanentDelegate !== undefined;
  const tokenProgram = token2022 ? TOKEN_2022_PROGRAM_ID : TOKEN_PROGRAM_ID;
  const decimals = options.decimals ?? 6;
  const mint = Keypair.generate();
  const authority = Keypair.generate();
  const extensions: ExtensionType[] = [];
  if (options.transferFee) extensions.push(ExtensionType.TransferFeeConfig);
  if (options.permanentDelegate) extensions.push(ExtensionType.PermanentDelegate);
  const space = getMintLen(extensions);
  const lamports = await chain.connection.getMinimumBalanceForRentExemption(space);
  const ixs: TransactionInstruction[] = [
    SystemProgram.createAccount({ fromPubkey: payer.publicKey, newAccountPubkey: mint.publicKey, space, lamports, programId: tokenProgram }),
  ];
  if (options.transferFee) {
    ixs.push(
      createInitializeTransferFeeConfigInstruction(
        mint.publicKey,
        authority.publicKey,
        authority.publicKey,
        options.transferFee.basisPoints,
        options.transferFee.maximumFee,
        tokenProgram,
      ),
    );
  }
  if (options.permanentDelegate) {
    ixs.push(createInitializePermanentDelegateInstruction(mint.publicKey, options.permanentDelegate, tokenProgram));
  }
  ixs.push(createInitializeMint2Instruction(mint.publicKey, decimals, authority.publicKey, null, tokenProgram));
  await send(chain, ixs, [payer, mint]);
  return { mint: mint.publicKey, authority, tokenProgram, decimals, asset: splToken(mint.publicKey, tokenProgram) };
}

/** The owner's associated token account, created if missing. */
export async function tokenAccount(chain: TestChain, payer: Keypair, mint: TestMint, owner: PublicKey): Promise<PublicKey> {
  const ata = getAssociatedTokenAddressSync(mint.mint, owner, true, mint.tokenProgram);
  await send(
    chain,
    [createAssociatedTokenAccountIdempotentInstruction(payer.publicKey, ata, owner, mint.mint, mint.tokenProgram)],
    [payer],
  );
  return ata;
}

export async function mintTo(chain: TestChain, payer: Keypair, mint: TestMint, destination: PublicKey, amount: bigint): Promise<void> {
  await send(
    chain,
    [createMintToInstruction(mint.mint, destination, mint.authority.publicKey, amount, [], mint.tokenProgram)],
    [payer, mint.authority],
  );
}

/** A token account's balance (0 when it does not exist). */
export async function tokenBalance(chain: TestChain, account: PublicKey): Promise<bigint> {
  const info = await chain.getAccount(account);
  if (info === null) return 0n;
  return unpackAccount(account, info, info.owner).amount;
}

/** Transfer fees withheld in a Token-2022 account. */
export async function withheldFees(chain: TestChain, account: PublicKey): Promise<bigint> {
  const info = await chain.getAccount(account);
  if (info === null) return 0n;
  return getTransferFeeAmount(unpackAccount(account, info, info.owner))?.withheldAmount ?? 0n;
}
