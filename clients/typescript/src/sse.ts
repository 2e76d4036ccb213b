// A parser of the text/event-stream format, as the HTML standard defines
// it (§9.2.6): lines end with CRLF, LF or CR; a blank line dispatches the
// event; `event`, `data`, `id` and `retry` fields; `:` starts a comment.

/** One dispatched event of a stream. */
export interface SSEMessage {
  /** The last event ID at dispatch (it carries over events without `id:`). */
  id: string;
  /** The event type; `message` when the event named none. */
  event: string;
  /** The data lines joined by `\n`. */
  data: string;
}

/** What one chunk of a stream held. */
export interface SSEChunk {
  messages: SSEMessage[];
  /** The last `retry:` in the chunk, in milliseconds. */
  retryMs?: number;
  /** How many comment lines it held (heartbeats). */
  comments: number;
}

/**
 * SSEParser turns decoded text, fed in pieces of any size, into events.
 * A field split across two pieces, and a CRLF split between them, are
 * read as one.
 */
export class SSEParser {
  private buf = "";
  private bomChecked = false;
  private pendingCR = false;
  private data: string[] = [];
  private hasData = false;
  private type = "";
  /** The last event ID buffer; set it to resume from a known ID. */
  lastEventId = "";

  constructor(lastEventId = "") {
    this.lastEventId = lastEventId;
  }

  /** feed parses text and returns the events it completed. */
  feed(text: string): SSEChunk {
    const out: SSEChunk = { messages: [], comments: 0 };
    if (!this.bomChecked && text.length > 0) {
      this.bomChecked = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = false;
    this.buf += text;
    let start = 0;
    for (;;) {
      let end = -1;
      let next = -1;
      for (let i = start; i < this.buf.length; i++) {
        const c = this.buf.charCodeAt(i);
        if (c === 0x0a) {
          end = i;
          next = i + 1;
          break;
        }
        if (c === 0x0d) {
          end = i;
          if (i + 1 < this.buf.length) {
            next = this.buf.charCodeAt(i + 1) === 0x0a ? i + 2 : i + 1;
          } else {
            next = i + 1; // a CR at the end: a LF may follow in the next piece
            this.pendingCR = true;
          }
          break;
        }
      }
      if (end < 0) break;
      this.line(this.buf.slice(start, end), out);
      start = next;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  private line(line: string, out: SSEChunk): void {
    if (line === "") {
      this.dispatch(out);
      return;
    }
    if (line.startsWith(":")) {
      out.comments++;
      return;
    }
    const colon = line.indexOf(":");
    let field = line;
    let value = "";
    if (colon >= 0) {
      field = line.slice(0, colon);
      value = line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
    }
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) out.retryMs = Number(value);
        break;
      default:
        // unknown fields are ignored
    }
  }

  private dispatch(out: SSEChunk): void {
    const type = this.type;
    this.type = "";
    if (!this.hasData) return;
    const data = this.data.join("\n");
    this.data = [];
    this.hasData = false;
    out.messages.push({ id: this.lastEventId, event: type || "message", data });
  }
}
