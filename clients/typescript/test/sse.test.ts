// The text/event-stream parser, fed the way networks cut streams.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { type SSEMessage, SSEParser } from "@asyncgw/client";

/** parseAll feeds pieces one after the other and returns every event and the last retry. */
function parseAll(pieces: string[], lastEventId = ""): { messages: SSEMessage[]; retryMs?: number; comments: number } {
  const p = new SSEParser(lastEventId);
  const out: { messages: SSEMessage[]; retryMs?: number; comments: number } = { messages: [], comments: 0 };
  for (const piece of pieces) {
    const c = p.feed(piece);
    out.messages.push(...c.messages);
    out.comments += c.comments;
    if (c.retryMs !== undefined) out.retryMs = c.retryMs;
  }
  return out;
}

const stream =
  "id: 1\nevent: queued\ndata: {\"state\":\"queued\"}\n\n" +
  ": keep-alive\n\n" +
  "retry: 1000\n\n" +
  "id: 2\nevent: running\ndata: {\"a\":\n" +
  "data: 1}\n\n";

const want: SSEMessage[] = [
  { id: "1", event: "queued", data: '{"state":"queued"}' },
  { id: "2", event: "running", data: '{"a":\n1}' },
];

describe("SSEParser", () => {
  it("parses events, ids, retry and comments", () => {
    const got = parseAll([stream]);
    assert.deepEqual(got.messages, want);
    assert.equal(got.retryMs, 1000);
    assert.equal(got.comments, 1);
  });

  it("gives the same events however the stream is cut", () => {
    for (let size = 1; size <= 7; size++) {
      const pieces: string[] = [];
      for (let i = 0; i < stream.length; i += size) pieces.push(stream.slice(i, i + size));
      assert.deepEqual(parseAll(pieces).messages, want, `pieces of ${size}`);
    }
  });

  it("takes CRLF and CR line ends, a CRLF cut in two included", () => {
    const crlf = stream.replace(/\n/g, "\r\n");
    assert.deepEqual(parseAll([crlf]).messages, want);
    assert.equal(crlf[6], "\n");
    assert.deepEqual(parseAll([crlf.slice(0, 6), crlf.slice(6)]).messages, want); // "id: 1\r" | "\n…"
    for (let i = 1; i < crlf.length; i++) {
      assert.deepEqual(parseAll([crlf.slice(0, i), crlf.slice(i)]).messages, want, `cut at ${i}`);
    }
    assert.deepEqual(parseAll([stream.replace(/\n/g, "\r")]).messages, want);
  });

  it("drops a leading byte order mark, and keeps the id across events without one", () => {
    const got = parseAll(["\uFEFFid: 7\ndata: a\n\ndata: b\n\n"]);
    assert.deepEqual(got.messages, [
      { id: "7", event: "message", data: "a" },
      { id: "7", event: "message", data: "b" },
    ]);
    assert.deepEqual(parseAll(["data: c\n\n"], "42").messages, [{ id: "42", event: "message", data: "c" }]);
  });

  it("follows the standard on the edges", () => {
    const got = parseAll([
      "data\n\n" + // a field without a colon: empty data
        "data:no space\n\n" +
        "event: only\n\n" + // no data: nothing is dispatched, the type is reset
        "data: x\n\n" +
        "id: bad\u0000id\ndata: y\n\n" + // an id with NUL is ignored
        "retry: soon\n\n" + // a retry that is not digits is ignored
        "unknown: field\ndata: z\n\n" +
        "data: unfinished", // no blank line: not dispatched
    ]);
    assert.deepEqual(got.messages, [
      { id: "", event: "message", data: "" },
      { id: "", event: "message", data: "no space" },
      { id: "", event: "message", data: "x" },
      { id: "", event: "message", data: "y" },
      { id: "", event: "message", data: "z" },
    ]);
    assert.equal(got.retryMs, undefined);
  });
});
