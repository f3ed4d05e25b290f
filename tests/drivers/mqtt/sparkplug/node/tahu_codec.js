// Independent Sparkplug B codec for interoperability tests: Eclipse Tahu's
// `sparkplug-payload` (npm). Reads one JSON request from stdin, writes one JSON answer.
//   {"op": "decode", "payload": "<base64>"}  -> the decoded payload as JSON
//   {"op": "encode", "payload": {...}}       -> {"payload": "<base64>"}
// JSON cannot hold 64-bit integers or bytes, so both directions use tagged objects:
// {"$long": "<decimal>", "unsigned": bool} and {"$bytes": "<base64>"}.
"use strict";

const Long = require("long");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

function toJson(value) {
  if (value === null || value === undefined) return value === undefined ? null : null;
  if (Long.isLong(value)) return { $long: value.toString(), unsigned: value.unsigned };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value)) out[key] = toJson(value[key]);
    return out;
  }
  return value;
}

function fromJson(value) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(fromJson);
  if ("$long" in value) return Long.fromString(value.$long, value.unsigned === true);
  if ("$bytes" in value) return Buffer.from(value.$bytes, "base64");
  const out = {};
  for (const key of Object.keys(value)) out[key] = fromJson(value[key]);
  return out;
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  let answer;
  if (request.op === "decode") {
    answer = toJson(sparkplug.decodePayload(Buffer.from(request.payload, "base64")));
  } else if (request.op === "encode") {
    const bytes = sparkplug.encodePayload(fromJson(request.payload));
    answer = { payload: Buffer.from(bytes).toString("base64") };
  } else {
    throw new Error(`unknown op ${request.op}`);
  }
  process.stdout.write(JSON.stringify(answer));
});
