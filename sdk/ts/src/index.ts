export * from "./canonical.js";
export * from "./errors.js";
export * from "./sign.js";
export * from "./policy.js";
export * from "./record.js";
export * from "./verify.js";
export * from "./client.js";
