import { ServerConnection } from '@jupyterlab/services';

import { apiURL, errorOf, JobServerError } from './request';

/** One server-sent event: its name and decoded JSON data. */
export interface IServerEvent {
  event: string;
  data: any;
}

export interface IStreamOptions {
  /** Called for each event as it arrives. */
  onEvent: (event: IServerEvent) => void;
  /** Ends the stream. */
  signal: AbortSignal;
}

/**
 * Follow a `text/event-stream` endpoint of the job server until it ends or
 * `signal` aborts. The request goes through `ServerConnection.makeRequest`,
 * so it carries the same authentication as every other call (the token
 * header, or the login cookie with XSRF); `EventSource` could not send the
 * header. Resolves when the server closes the stream; rejects with a
 * {@link JobServerError} when it refuses it.
 */
export async function streamEvents(
  endPoint: string,
  options: IStreamOptions,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      apiURL(endPoint, undefined, settings),
      {
        signal: options.signal,
        headers: { Accept: 'text/event-stream' },
        cache: 'no-cache'
      },
      settings
    );
  } catch (error) {
    if (options.signal.aborted) {
      return;
    }
    throw new JobServerError(
      0,
      'unreachable',
      'The Jupyter server cannot be reached: ' + (error as Error).message
    );
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  if (!response.body) {
    throw new JobServerError(0, 'unreachable', 'The event stream has no body');
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new EventParser(options.onEvent);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } catch (error) {
    if (!options.signal.aborted) {
      throw new JobServerError(
        0,
        'unreachable',
        'The event stream was cut off: ' + (error as Error).message
      );
    }
  } finally {
    reader.releaseLock();
  }
}

/** Splits the text of an event stream into events (the WHATWG format). */
export class EventParser {
  constructor(private _emit: (event: IServerEvent) => void) {}

  feed(text: string): void {
    this._buffer += text;
    let end: number;
    while ((end = this._lineEnd()) >= 0) {
      const line = this._buffer.slice(0, end);
      const skip =
        this._buffer[end] === '\r' && this._buffer[end + 1] === '\n' ? 2 : 1;
      this._buffer = this._buffer.slice(end + skip);
      this._line(line);
    }
  }

  private _lineEnd(): number {
    const n = this._buffer.indexOf('\n');
    const r = this._buffer.indexOf('\r');
    if (n < 0) {
      return r;
    }
    return r < 0 ? n : Math.min(n, r);
  }

  private _line(line: string): void {
    if (line === '') {
      if (this._data.length) {
        const raw = this._data.join('\n');
        let data: unknown = raw;
        try {
          data = JSON.parse(raw);
        } catch {
          // plain text data
        }
        this._emit({ event: this._event || 'message', data });
      }
      this._event = '';
      this._data = [];
      return;
    }
    if (line.startsWith(':')) {
      return; // a comment: keep-alive
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this._event = value;
    } else if (field === 'data') {
      this._data.push(value);
    }
  }

  private _buffer = '';
  private _event = '';
  private _data: string[] = [];
}
