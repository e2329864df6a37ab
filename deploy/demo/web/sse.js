// A Server-Sent Events parser for text arriving in arbitrary chunks, following the WHATWG
// "event stream interpretation" rules: lines end with CRLF, LF or CR; a blank line dispatches;
// lines starting with ":" are comments; `data` lines join with "\n"; an `id` containing NUL is
// ignored; `retry` takes digits only.

export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.started = false;
    this.eventType = "";
    this.data = "";
    this.hasData = false;
    this.lastEventId = null;
    this.retry = null;
  }

  feed(text) {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf("\r", start);
      const lf = this.buffer.indexOf("\n", start);
      let end;
      if (cr === -1 && lf === -1) break;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        this.line(this.buffer.slice(start, end));
        start = end + 1;
        continue;
      }
      end = cr;
      if (end + 1 === this.buffer.length) {
        // A CR at the end of a chunk may be the first half of a CRLF: wait for the next chunk.
        break;
      }
      this.line(this.buffer.slice(start, end));
      start = this.buffer[end + 1] === "\n" ? end + 2 : end + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) {
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data += value + "\n";
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }

  dispatch() {
    const type = this.eventType || "message";
    const data = this.data.endsWith("\n") ? this.data.slice(0, -1) : this.data;
    const hasData = this.hasData;
    this.eventType = "";
    this.data = "";
    this.hasData = false;
    if (!hasData) return;
    this.onEvent({ type, data, lastEventId: this.lastEventId });
  }
}
