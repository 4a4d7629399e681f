// The parts of web3.js's `Connection` this package uses, as structural types: a real
// `Connection` satisfies each, and so can a test double or another transport.
import type {
  AccountChangeCallback,
  AccountInfo,
  AccountSubscriptionConfig,
  BlockhashWithExpiryBlockHeight,
  BlockheightBasedTransactionConfirmationStrategy,
  Commitment,
  Finality,
  RpcResponseAndContext,
  SendOptions,
  SignatureResult,
  VersionedTransactionResponse,
  PublicKey,
} from "@solana/web3.js";

export interface AccountReader {
  getAccountInfo(publicKey: PublicKey, commitment?: Commitment): Promise<AccountInfo<Uint8Array> | null>;
  getMultipleAccountsInfo(publicKeys: PublicKey[], commitment?: Commitment): Promise<(AccountInfo<Uint8Array> | null)[]>;
}

export interface TransactionSender {
  getLatestBlockhash(commitment?: Commitment): Promise<BlockhashWithExpiryBlockHeight>;
  sendRawTransaction(rawTransaction: Uint8Array | Array<number>, options?: SendOptions): Promise<string>;
  confirmTransaction(
    strategy: BlockheightBasedTransactionConfirmationStrategy,
    commitment?: Commitment,
  ): Promise<RpcResponseAndContext<SignatureResult>>;
}

export interface TransactionReader {
  getTransaction(
    signature: string,
    options: { commitment?: Finality; maxSupportedTransactionVersion: number },
  ): Promise<VersionedTransactionResponse | null>;
}

export interface AccountSubscriber {
  onAccountChange(publicKey: PublicKey, callback: AccountChangeCallback, config?: AccountSubscriptionConfig): number;
  removeAccountChangeListener(clientSubscriptionId: number): Promise<void>;
}

/** Everything the session helper needs; `Connection` is one. */
export type VaultConnection = AccountReader & TransactionSender & TransactionReader & AccountSubscriber;
