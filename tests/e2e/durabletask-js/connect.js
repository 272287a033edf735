// Connection settings from the environment the runner sets.
"use strict";
const grpc = require("@grpc/grpc-js");

const hostAddress = process.env.BATON_GRPC || "127.0.0.1:4001";
const key = process.env.BATON_KEY || "";

function options() {
  const o = { hostAddress, logger: { error() {}, warn() {}, info() {}, debug() {} } };
  if (key) {
    o.metadataGenerator = async () => {
      const m = new grpc.Metadata();
      m.set("authorization", `Bearer ${key}`);
      return m;
    };
  }
  return o;
}

module.exports = { options, hostAddress };
