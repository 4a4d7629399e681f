export * from "./constants.js";
export * from "./session-id.js";
export * from "./pda.js";
export * from "./asset.js";
export * from "./instructions.js";
export * from "./transaction.js";
export * from "./accounts.js";
export * from "./subscribe.js";
export * from "./events.js";
export * from "./errors.js";
export * from "./ephemeral-key.js";
export * from "./session.js";
export type * from "./connection.js";
export {
  IDL,
  IDL_PROGRAM_ID,
  INSTRUCTIONS,
  vaultCoder,
  BorshDecodeError,
  type EphemeralVault,
  type InstructionSpec,
  type InstructionAccountSpec,
  type VaultAccountName,
} from "./coder.js";
export type { IdlTypeSpec } from "./internal/borsh.js";
export type { Amount } from "./internal/bytes.js";
