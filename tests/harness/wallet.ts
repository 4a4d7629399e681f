// A parent wallet for tests: a Keypair behind the wallet-adapter interface (signTransaction,
// signMessage with real ed25519 signatures from node:crypto).
import { createPrivateKey, sign } from "node:crypto";

import { Keypair, Transaction, VersionedTransaction, type PublicKey } from "@solana/web3.js";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

export class KeypairWallet {
  /** How many transactions / messages it was asked to sign. */
  signedTransactions = 0;
  signedMessages = 0;

  /**
   * `reserialize`: hand back a re-deserialised copy of each signed transaction, as some wallets
   * do (the copy forgets `lastValidBlockHeight`).
   */
  constructor(
    readonly keypair: Keypair = Keypair.generate(),
    private readonly options: { reserialize?: boolean } = {},
  ) {}

  get publicKey(): PublicKey {
    return this.keypair.publicKey;
  }

  async signTransaction<T extends Transaction | VersionedTransaction>(tx: T): Promise<T> {
    this.signedTransactions++;
    if (tx instanceof VersionedTransaction) {
      tx.sign([this.keypair]);
      return tx;
    }
    (tx as Transaction).partialSign(this.keypair);
    if (this.options.reserialize) {
      return Transaction.from((tx as Transaction).serialize({ requireAllSignatures: false })) as T;
    }
    return tx;
  }

  async signAllTransactions<T extends Transaction | VersionedTransaction>(txs: T[]): Promise<T[]> {
    return Promise.all(txs.map((t) => this.signTransaction(t)));
  }

  async signMessage(message: Uint8Array): Promise<Uint8Array> {
    this.signedMessages++;
    const key = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, Buffer.from(this.keypair.secretKey.subarray(0, 32))]),
      format: "der",
      type: "pkcs8",
    });
    return new Uint8Array(sign(null, message, key));
  }
}
