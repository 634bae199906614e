export * from "./canonical.js";
export * from "./errors.js";
export * from "./sign.js";
