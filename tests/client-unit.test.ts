// The client's pure parts, without a chain: addresses, instruction encoding (checked against
// Anchor's own builder), the error table and error mapping, and event decoding's refusal of
// forged events.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { describe, it } from "node:test";

import { AnchorProvider, type Wallet } from "@anchor-lang/core";
import * as splToken from "@solana/spl-token";
import { TOKEN_2022_PROGRAM_ID, getAssociatedTokenAddressSync } from "@solana/spl-token";
import { Connection, Keypair, PublicKey, SendTransactionError, SystemProgram } from "@solana/web3.js";
import BN from "bn.js";

import {
  AnchorFrameworkError,
  asSessionId,
  BPF_LOADER_UPGRADEABLE_ID,
  cleanupVaultInstruction,
  configAddress,
  createSessionInstruction,
  decodeEvent,
  eventAuthorityAddress,
  EVENT_IX_TAG_LE,
  EventDecodeError,
  eventsFromInstructions,
  executeTradeInstruction,
  IDL,
  isVaultError,
  newSessionId,
  parseTransactionError,
  programDataAddress,
  PROGRAM_ID,
  ASSOCIATED_TOKEN_PROGRAM_ID,
  associatedTokenAccountIdempotentInstruction,
  associatedTokenAddress,
  TOKEN_PROGRAM_ID,
  TOKEN_2022_PROGRAM_ID as OUR_TOKEN_2022_PROGRAM_ID,
  fetchTransactionEvents,
  MAX_SUPPORTED_TRANSACTION_VERSION,
  UnsupportedTransactionVersionError,
  decodeConfig,
  decodeVault,
  vaultCoder,
  BorshDecodeError,
  type IdlTypeSpec,
  sessionIdFromUuid,
  sessionIdToUuid,
  sessionRef,
  SOL,
  token2022,
  TransactionFailedError,
  vaultAddress,
  VaultErrorCode,
  VaultProgramError,
  vaultTokenAddress,
  type ResolvedInstruction,
  type VaultConnection,
} from "../app/dist/index.js";
import { coder, vaultProgram } from "../app/dist/anchor.js";
import { REPO_ROOT } from "./harness/chain.js";

const enc = (s: string) => Buffer.from(s);

describe("addresses", () => {
  it("derive the program's PDAs from its seeds", () => {
    const parent = Keypair.generate().publicKey;
    const id = newSessionId();
    const find = (seeds: Uint8Array[], program = PROGRAM_ID) => PublicKey.findProgramAddressSync(seeds, program)[0];
    assert.ok(configAddress().equals(find([enc("config")])));
    const vault = find([enc("vault"), parent.toBytes(), id]);
    assert.ok(vaultAddress(parent, id).equals(vault));
    assert.ok(vaultAddress(parent, sessionIdToUuid(id)).equals(vault));
    assert.ok(vaultTokenAddress(vault).equals(find([enc("vault_token"), vault.toBytes()])));
    assert.ok(eventAuthorityAddress().equals(find([enc("__event_authority")])));
    assert.ok(programDataAddress().equals(find([PROGRAM_ID.toBytes()], BPF_LOADER_UPGRADEABLE_ID)));
    assert.equal(PROGRAM_ID.toBase58(), "LcbuhnHozNqGewPGm62N4kqTirH9Enzkn6fMFJBLiwC");
    // Another deployment's addresses.
    const other = Keypair.generate().publicKey;
    assert.ok(configAddress(other).equals(find([enc("config")], other)));
  });

  it("derive associated token accounts and their idempotent creation as @solana/spl-token does", () => {
    assert.ok(TOKEN_PROGRAM_ID.equals(splToken.TOKEN_PROGRAM_ID));
    assert.ok(OUR_TOKEN_2022_PROGRAM_ID.equals(splToken.TOKEN_2022_PROGRAM_ID));
    assert.ok(ASSOCIATED_TOKEN_PROGRAM_ID.equals(splToken.ASSOCIATED_TOKEN_PROGRAM_ID));
    for (const program of [splToken.TOKEN_PROGRAM_ID, splToken.TOKEN_2022_PROGRAM_ID]) {
      const [payer, mint] = [Keypair.generate().publicKey, Keypair.generate().publicKey];
      const owner = vaultAddress(payer, newSessionId()); // off the curve
      assert.ok(associatedTokenAddress(mint, owner, program).equals(getAssociatedTokenAddressSync(mint, owner, true, program)));
      const ours = associatedTokenAccountIdempotentInstruction({ payer, owner, mint, tokenProgram: program });
      const theirs = splToken.createAssociatedTokenAccountIdempotentInstruction(
        payer, getAssociatedTokenAddressSync(mint, owner, true, program), owner, mint, program,
      );
      assert.ok(ours.programId.equals(theirs.programId));
      assert.deepEqual(Buffer.from(ours.data), Buffer.from(theirs.data));
      assert.deepEqual(
        ours.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
        theirs.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
      );
    }
  });

  it("session ids are UUIDs", () => {
    const id = newSessionId();
    assert.equal(id.length, 16);
    assert.equal(id[6]! >> 4, 4);
    assert.equal(id[8]! >> 6, 2);
    const uuid = sessionIdToUuid(id);
    assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(sessionIdFromUuid(uuid), id);
    assert.throws(() => asSessionId(new Uint8Array(15)), TypeError);
    assert.throws(() => sessionIdFromUuid("not-a-uuid"), TypeError);
  });
});

describe("instruction builders", () => {
  const wallet = { publicKey: Keypair.generate().publicKey } as unknown as Wallet;
  const provider = new AnchorProvider(new Connection("http://127.0.0.1:1"), wallet, {});
  const program = vaultProgram(provider);

  it("encode exactly what Anchor's own builder encodes (SOL session, optional accounts omitted)", async () => {
    const parent = Keypair.generate().publicKey;
    const delegate = Keypair.generate().publicKey;
    const sessionId = newSessionId();
    const ours = createSessionInstruction({
      parent, delegate, sessionId, approvedAmount: 1000n, perTradeCap: 500n, durationSecs: 3600,
      destinations: [delegate], initialDeposit: 700n, feeTopUp: 9n,
    });
    const anchors = await program.methods
      .createSession({
        sessionId: Array.from(sessionId), approvedAmount: new BN(1000), perTradeCap: new BN(500), durationSecs: new BN(3600),
        destinations: [delegate], initialDeposit: new BN(700), feeTopUp: new BN(9),
      })
      .accountsStrict({
        parent, config: configAddress(), vault: vaultAddress(parent, sessionId), delegate,
        mint: null, vaultTokenAccount: null, parentTokenAccount: null, tokenProgram: null,
        systemProgram: SystemProgram.programId, eventAuthority: eventAuthorityAddress(), program: PROGRAM_ID,
      })
      .instruction();
    assert.deepEqual(Buffer.from(ours.data), Buffer.from(anchors.data));
    assert.deepEqual(
      ours.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
      anchors.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
    );
    // Omitted optional accounts are the program id, read-only.
    assert.ok(ours.keys[4]!.pubkey.equals(PROGRAM_ID));
    assert.equal(ours.keys[4]!.isWritable, false);
  });

  it("fill a Token-2022 session's token accounts (ATAs by default)", async () => {
    const parent = Keypair.generate().publicKey;
    const delegate = Keypair.generate().publicKey;
    const mint = Keypair.generate().publicKey;
    const destination = Keypair.generate().publicKey;
    const ref = sessionRef(parent, newSessionId(), token2022(mint));
    const vault = vaultAddress(parent, ref.sessionId);
    const ix = executeTradeInstruction({ session: ref, delegate, destination, tradeId: 3n, amount: 10, fee: 1 });
    const anchors = await program.methods
      .executeTrade({ tradeId: new BN(3), amount: new BN(10), fee: new BN(1) })
      .accountsStrict({
        delegate, config: configAddress(), vault, destination,
        destinationTokenAccount: getAssociatedTokenAddressSync(mint, destination, true, TOKEN_2022_PROGRAM_ID),
        mint, vaultTokenAccount: vaultTokenAddress(vault), tokenProgram: TOKEN_2022_PROGRAM_ID,
        eventAuthority: eventAuthorityAddress(), program: PROGRAM_ID,
      })
      .instruction();
    assert.deepEqual(Buffer.from(ix.data), Buffer.from(anchors.data));
    assert.deepEqual(
      ix.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
      anchors.keys.map((k) => [k.pubkey.toBase58(), k.isSigner, k.isWritable]),
    );
    assert.equal(ix.keys.find((k) => k.pubkey.equals(delegate))?.isSigner, true, "the ephemeral wallet signs trades");

    const cleanup = cleanupVaultInstruction({ session: ref, caller: delegate });
    assert.ok(cleanup.keys[6]!.pubkey.equals(getAssociatedTokenAddressSync(mint, parent, true, TOKEN_2022_PROGRAM_ID)));
    assert.ok(cleanup.keys[3]!.pubkey.equals(parent));
  });

  it("refuse values that do not fit", () => {
    const base = { parent: Keypair.generate().publicKey, delegate: Keypair.generate().publicKey, sessionId: newSessionId(), durationSecs: 60 };
    assert.throws(() => createSessionInstruction({ ...base, approvedAmount: -1 }), RangeError);
    assert.throws(() => createSessionInstruction({ ...base, approvedAmount: 1n << 64n }), RangeError);
    assert.throws(() => createSessionInstruction({ ...base, approvedAmount: 0.5 }), RangeError);
    assert.throws(
      () => executeTradeInstruction({ session: sessionRef(base.parent, base.sessionId, SOL), delegate: base.delegate, destination: base.delegate, destinationTokenAccount: base.delegate, tradeId: 1, amount: 1 }),
      TypeError,
    );
  });
});

describe("errors", () => {
  const idlErrors = (IDL as unknown as { errors: { code: number; name: string; msg: string }[] }).errors;

  it("the error table matches the IDL", () => {
    assert.deepEqual(
      Object.entries(VaultErrorCode).map(([name, code]) => ({ name, code })),
      idlErrors.map(({ name, code }) => ({ name, code })),
    );
  });

  it("map a preflight failure with logs to the program's error and message", () => {
    const logs = [
      `Program ${PROGRAM_ID.toBase58()} invoke [1]`,
      "Program log: Instruction: ExecuteTrade",
      "Program log: AnchorError thrown in programs/ephemeral-vault/src/instructions/execute_trade.rs:101. Error Code: PerTradeCapExceeded. Error Number: 6015. Error Message: Trade amount exceeds the per-trade cap.",
      `Program ${PROGRAM_ID.toBase58()} consumed 9000 of 200000 compute units`,
      `Program ${PROGRAM_ID.toBase58()} failed: custom program error: 0x177f`,
    ];
    const err = new SendTransactionError({
      action: "send",
      signature: "",
      transactionMessage: "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x177f",
      logs,
    });
    const parsed = parseTransactionError(err);
    assert.ok(parsed instanceof VaultProgramError);
    assert.equal(parsed.errorName, "PerTradeCapExceeded");
    assert.equal(parsed.code, 6015);
    assert.equal(parsed.programMessage, "Trade amount exceeds the per-trade cap");
    assert.equal(parsed.instructionIndex, 0);
    assert.deepEqual(parsed.logs, logs);
    assert.equal(parsed.cause, err);
    assert.ok(isVaultError(err, "PerTradeCapExceeded"));
    assert.ok(!isVaultError(err, "Paused"));
  });

  it("map a confirmation's error object, Anchor's own checks, and other programs' failures", () => {
    const fromObject = parseTransactionError({ InstructionError: [1, { Custom: 6012 }] });
    assert.ok(fromObject instanceof VaultProgramError);
    assert.equal(fromObject.errorName, "SessionExpired");
    assert.equal(fromObject.instructionIndex, 1);

    const anchor = parseTransactionError(new Error("x"), { logs: [`Program ${PROGRAM_ID.toBase58()} failed: custom program error: 0x7d6`] });
    assert.ok(anchor instanceof AnchorFrameworkError);
    assert.equal(anchor.errorName, "ConstraintSeeds");

    // A token program failing inside our CPI: the first failing program is the token program.
    const token = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA";
    const other = parseTransactionError(new Error("x"), {
      logs: [`Program ${token} failed: custom program error: 0x1`, `Program ${PROGRAM_ID.toBase58()} failed: custom program error: 0x1`],
    });
    assert.ok(other instanceof TransactionFailedError);
    assert.equal(other.programId?.toBase58(), token);
    assert.equal(other.code, 1);

    // Another Anchor program's 6015 is not ours.
    const foreign = Keypair.generate().publicKey.toBase58();
    assert.ok(parseTransactionError(new Error("x"), { logs: [`Program ${foreign} failed: custom program error: 0x177f`] }) instanceof TransactionFailedError);
    assert.equal(parseTransactionError(new Error("network down")), null);
  });
});

describe("events", () => {
  const authority = eventAuthorityAddress();
  function eventBytes(): Uint8Array {
    const disc = (IDL as unknown as { events: { name: string; discriminator: number[] }[] }).events.find((e) => e.name === "PauseSet")!.discriminator;
    const body = coder.types.encode("pauseSet", { admin: authority, paused: true, timestamp: new BN(42) });
    return Buffer.concat([Buffer.from(EVENT_IX_TAG_LE), Buffer.from(disc), body]);
  }
  const ix = (over: Partial<ResolvedInstruction> = {}): ResolvedInstruction => ({
    programId: PROGRAM_ID, accounts: [authority], data: eventBytes(), instructionIndex: 0, innerIndex: 0, ...over,
  });

  it("decode a genuine event CPI", () => {
    const events = eventsFromInstructions([ix()]);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.name, "PauseSet");
    assert.deepEqual(events[0]!.data, { admin: authority, paused: true, timestamp: 42 });
  });

  it("ignore the same bytes from another program, another account, or extra accounts", () => {
    const stranger = Keypair.generate().publicKey;
    assert.deepEqual(eventsFromInstructions([ix({ programId: stranger })]), []);
    assert.deepEqual(eventsFromInstructions([ix({ accounts: [stranger] })]), []);
    assert.deepEqual(eventsFromInstructions([ix({ accounts: [authority, stranger] })]), []);
    assert.deepEqual(eventsFromInstructions([ix({ accounts: [] })]), []);
    // Without the event tag it is some other self-call, not an event.
    assert.deepEqual(eventsFromInstructions([ix({ data: eventBytes().subarray(8) })]), []);
  });

  it("refuse malformed bodies and unknown discriminators (strict), skip them otherwise", () => {
    const trailing = Buffer.concat([Buffer.from(eventBytes()), Buffer.from([0])]);
    assert.throws(() => eventsFromInstructions([ix({ data: trailing })], { strict: true }), EventDecodeError);
    assert.deepEqual(eventsFromInstructions([ix({ data: trailing })]), []);
    const unknown = Buffer.concat([Buffer.from(EVENT_IX_TAG_LE), Buffer.alloc(8, 7), Buffer.alloc(8)]);
    assert.throws(() => eventsFromInstructions([ix({ data: unknown })], { strict: true }), EventDecodeError);
    assert.throws(() => decodeEvent(new Uint8Array(4)), EventDecodeError);
  });
});

// Anchor's own BorshCoder is the oracle for this package's codec: random values of every type
// the IDL declares, encoded by one and decoded by the other.
describe("borsh codec (checked against Anchor's BorshCoder)", () => {
  type Def = { name: string; type: { kind: "struct"; fields: { name: string; type: IdlTypeSpec }[] } | { kind: "enum"; variants: { name: string }[] } };
  const raw = IDL as unknown as {
    types: Def[];
    instructions: { name: string; args: { name: string; type: IdlTypeSpec }[] }[];
    events: { name: string }[];
  };
  const defs = new Map(raw.types.map((t) => [t.name, t.type]));
  const camel = (n: string) => n.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()).replace(/^[A-Z]/, (c) => c.toLowerCase());
  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const randBig = (bits: number) => Array.from({ length: bits / 8 }, () => BigInt(rand(256))).reduce((a, b) => (a << 8n) | b, 0n);

  /** [what Anchor's coder takes and returns, what this package takes and returns]. */
  function sample(type: IdlTypeSpec): [unknown, unknown] {
    if (typeof type === "string") {
      switch (type) {
        case "u8": { const v = rand(256); return [v, v]; }
        case "u16": { const v = rand(65536); return [v, v]; }
        case "u32": { const v = rand(2 ** 31) * 2 + rand(2); return [v, v]; }
        case "u64": { const v = randBig(64); return [new BN(v.toString()), v]; }
        case "i64": { const v = rand(2 ** 31) * (rand(2) ? -1 : 1) * 1000; return [new BN(v), v]; }
        case "bool": { const v = rand(2) === 1; return [v, v]; }
        case "pubkey": { const v = Keypair.generate().publicKey; return [v, v]; }
        default: throw new Error(`no sampler for ${type}`);
      }
    }
    if ("option" in type) {
      if (rand(2) === 0) return [null, null];
      return sample(type.option);
    }
    if ("vec" in type) {
      const items = Array.from({ length: rand(4) }, () => sample(type.vec));
      return [items.map((i) => i[0]), items.map((i) => i[1])];
    }
    if ("array" in type) {
      const [inner, len] = type.array;
      const items = Array.from({ length: len }, () => sample(inner));
      return [items.map((i) => i[0]), inner === "u8" ? Uint8Array.from(items.map((i) => i[1] as number)) : items.map((i) => i[1])];
    }
    const def = defs.get(type.defined.name)!;
    if (def.kind === "enum") {
      const v = camel(def.variants[rand(def.variants.length)]!.name);
      return [{ [v]: {} }, v];
    }
    const a: Record<string, unknown> = {};
    const o: Record<string, unknown> = {};
    for (const f of def.fields) [a[camel(f.name)], o[camel(f.name)]] = sample(f.type);
    return [a, o];
  }

  it("encodes every instruction's arguments as Anchor does", () => {
    for (const ix of raw.instructions) {
      for (let round = 0; round < 5; round++) {
        const anchorArgs: Record<string, unknown> = {};
        const ourArgs: Record<string, unknown> = {};
        for (const arg of ix.args) [anchorArgs[camel(arg.name)], ourArgs[camel(arg.name)]] = sample(arg.type);
        assert.deepEqual(
          Buffer.from(vaultCoder.encodeInstruction(camel(ix.name), ourArgs)),
          coder.instruction.encode(camel(ix.name), anchorArgs),
          ix.name,
        );
      }
    }
  });

  it("decodes every type Anchor encodes, and encodes it back byte for byte", () => {
    for (const t of raw.types) {
      for (let round = 0; round < 5; round++) {
        const [anchorValue, ours] = sample({ defined: { name: t.name } });
        const bytes = coder.types.encode(camel(t.name), anchorValue);
        assert.deepEqual(vaultCoder.decodeType(t.name, bytes), ours, t.name);
        assert.deepEqual(Buffer.from(vaultCoder.encodeType(t.name, ours)), bytes, t.name);
      }
    }
  });

  it("decodes the Vault and Config accounts as Anchor encodes them, and refuses another discriminator", async () => {
    const [anchorVault, ourVault] = sample({ defined: { name: "Vault" } }) as [Record<string, unknown>, Record<string, unknown>];
    (anchorVault as { destinationCount: number }).destinationCount = 2;
    const vaultBytes = await coder.accounts.encode("vault", anchorVault);
    const vault = decodeVault(vaultBytes);
    assert.deepEqual(vault.destinations, (ourVault.destinations as PublicKey[]).slice(0, 2));
    assert.equal(vault.approvedAmount, ourVault.approvedAmount);
    assert.equal(vault.expiresAt, ourVault.expiresAt);
    assert.deepEqual(vault.sessionId, ourVault.sessionId);
    assert.equal(vault.status, ourVault.status);
    const [anchorConfig, ourConfig] = sample({ defined: { name: "Config" } }) as [Record<string, unknown>, Record<string, unknown>];
    const config = decodeConfig(await coder.accounts.encode("config", anchorConfig));
    assert.equal(config.feeTopUpCap, ourConfig.feeTopUpCap);
    assert.equal(config.maxSessionDuration, ourConfig.maxSessionDuration);
    assert.ok(config.admin.equals(ourConfig.admin as PublicKey));
    const configBytes = await coder.accounts.encode("config", anchorConfig);
    assert.throws(() => decodeVault(configBytes), BorshDecodeError);
    assert.throws(() => decodeVault(vaultBytes.subarray(0, 100)), BorshDecodeError);
  });

  it("app/src/internal/anchor-errors.ts is in sync with @anchor-lang/core (npm run check-anchor-errors)", () => {
    execFileSync(process.execPath, [resolve(REPO_ROOT, "app/scripts/sync-anchor-errors.mjs"), "--check"], { stdio: "pipe" });
  });
});

describe("transaction versions", () => {
  it("asks for the newest version web3.js reads, and names a newer one with a typed error", async () => {
    // A JSON-RPC endpoint answering getTransaction as a node does for a version-1 transaction
    // asked for with a lower maxSupportedTransactionVersion (error -32015), read through a real
    // web3.js Connection.
    const asked: unknown[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c));
      req.on("end", () => {
        const rpc = JSON.parse(body) as { id: number; method: string; params: [string, { maxSupportedTransactionVersion?: number }] };
        asked.push(rpc.params[1]?.maxSupportedTransactionVersion);
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({
          jsonrpc: "2.0", id: rpc.id,
          error: {
            code: -32015,
            message: 'Transaction version (1) is not supported by the requesting client. Please try the request again with the following configuration parameter: "maxSupportedTransactionVersion": 1',
          },
        }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const connection = new Connection(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const signature = "5".repeat(88);
      await assert.rejects(fetchTransactionEvents(connection, signature), (e: unknown) => {
        assert.ok(e instanceof UnsupportedTransactionVersionError, String(e));
        assert.equal(e.version, 1);
        assert.equal(e.signature, signature);
        assert.equal(e.maxSupportedVersion, MAX_SUPPORTED_TRANSACTION_VERSION);
        return true;
      });
      assert.deepEqual(asked, [MAX_SUPPORTED_TRANSACTION_VERSION]);
      assert.equal(MAX_SUPPORTED_TRANSACTION_VERSION, 0, "web3.js 1.x reads legacy and version 0");
    } finally {
      server.close();
    }

    // A reader that hands back a newer transaction instead of refusing it.
    const newer = { getTransaction: async () => ({ version: 1, meta: null, transaction: {} }) as never };
    await assert.rejects(fetchTransactionEvents(newer, "sig"), UnsupportedTransactionVersionError);
  });
});

describe("packaging", () => {
  it("app/src/idl is in sync with target/idl (npm run check-idl)", () => {
    execFileSync(process.execPath, [resolve(REPO_ROOT, "app/scripts/sync-idl.mjs"), "--check"], { stdio: "pipe" });
  });

  it("a web3.js Connection is a VaultConnection", () => {
    const connection: VaultConnection = new Connection("http://127.0.0.1:1");
    assert.equal(typeof connection.onAccountChange, "function");
  });
});
