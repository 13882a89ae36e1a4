import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { IDatafile } from './api';
import { apiURL, JobServerError } from './request';

export type UploadState = 'uploading' | 'done' | 'failed' | 'cancelled';

/**
 * One file on its way to the data folder: `PUT datafiles/{name}` with the
 * file itself as the body, streamed by the browser (never read into memory,
 * never base64). `XMLHttpRequest` rather than `fetch` because only it reports
 * upload progress.
 */
export class Upload {
  constructor(
    readonly file: File,
    readonly name: string = file.name,
    readonly overwrite = false
  ) {}

  get loaded(): number {
    return this._loaded;
  }

  get total(): number {
    return this.file.size;
  }

  /** Between 0 and 1. */
  get fraction(): number {
    return this.total
      ? this._loaded / this.total
      : this._state === 'done'
        ? 1
        : 0;
  }

  get state(): UploadState {
    return this._state;
  }

  get error(): JobServerError | null {
    return this._error;
  }

  /** Emitted on progress and when the upload ends. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Send the file; resolves with the datafile, rejects with the server's error. */
  start(
    settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ): Promise<IDatafile> {
    const url = apiURL(
      `datafiles/${encodeURIComponent(this.name)}`,
      { overwrite: this.overwrite ? 'true' : undefined },
      settings
    );
    const xhr = (this._xhr = new XMLHttpRequest());
    return new Promise<IDatafile>((resolve, reject) => {
      xhr.open('PUT', url);
      xhr.withCredentials = true;
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      if (settings.token) {
        xhr.setRequestHeader('Authorization', `token ${settings.token}`);
      }
      const xsrf = cookie('_xsrf');
      if (xsrf !== undefined) {
        xhr.setRequestHeader('X-XSRFToken', xsrf);
      }
      xhr.upload.onprogress = event => {
        this._loaded = event.loaded;
        this._changed.emit();
      };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          this._loaded = this.total;
          this._finish('done');
          resolve(JSON.parse(xhr.responseText) as IDatafile);
          return;
        }
        let code = 'error';
        let message = xhr.statusText || `HTTP ${xhr.status}`;
        try {
          const body = JSON.parse(xhr.responseText);
          code = body.error ?? code;
          message = body.message ?? message;
        } catch {
          // not JSON
        }
        if (xhr.status === 413 && code === 'error') {
          message = `${this.name} is too large for the job server`;
        }
        this._fail(new JobServerError(xhr.status, code, message), reject);
      };
      xhr.onerror = () => {
        this._fail(
          new JobServerError(
            0,
            'unreachable',
            `The upload of ${this.name} was cut off: the Jupyter server cannot be reached`
          ),
          reject
        );
      };
      xhr.onabort = () => {
        this._fail(
          new JobServerError(
            0,
            'cancelled',
            `The upload of ${this.name} was cancelled`
          ),
          reject,
          'cancelled'
        );
      };
      xhr.send(this.file);
    });
  }

  /** Stop sending; the server drops what it has received. */
  cancel(): void {
    if (this._state === 'uploading' && this._xhr) {
      this._xhr.abort();
    }
  }

  private _fail(
    error: JobServerError,
    reject: (reason: unknown) => void,
    state: UploadState = 'failed'
  ): void {
    this._error = error;
    this._finish(state);
    reject(error);
  }

  private _finish(state: UploadState): void {
    this._state = state;
    this._changed.emit();
  }

  private _xhr: XMLHttpRequest | null = null;
  private _loaded = 0;
  private _state: UploadState = 'uploading';
  private _error: JobServerError | null = null;
  private _changed = new Signal<this, void>(this);
}

function cookie(name: string): string | undefined {
  let value: string | undefined;
  for (const part of document.cookie.split(';')) {
    const trimmed = part.trim();
    if (trimmed.startsWith(name + '=')) {
      value = trimmed.substring(name.length + 1); // the last one wins, as on the server
    }
  }
  return value;
}
