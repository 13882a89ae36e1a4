import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Where the job server's REST API lives, under Jupyter's base URL. */
export const API_PREFIX = 'jobserver/api';

/**
 * An answer of the job server that is not a success: its HTTP status, the
 * machine-readable code and the message meant for a person.
 */
export class JobServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message);
    this.name = 'JobServerError';
  }

  /** True when the server could not be reached at all. */
  get unreachable(): boolean {
    return this.status === 0;
  }
}

/** How {@link requestAPI} reads an answer's body. */
export type ResponseKind = 'json' | 'text' | 'response';

export interface IRequestOptions {
  /** `json` (the default), `text`, or `response` for the raw, unread answer. */
  read?: ResponseKind;
  /** Query parameters; a list gives the parameter once per value. */
  query?: Record<string, string | number | boolean | string[] | undefined>;
}

/**
 * The URL of an API endpoint (`jobs/abc/events`), with its query string.
 */
export function apiURL(
  endPoint: string,
  query?: IRequestOptions['query'],
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  let url = URLExt.join(settings.baseUrl, API_PREFIX, endPoint);
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === '') {
        continue;
      }
      for (const one of Array.isArray(value) ? value : [value]) {
        params.append(key, String(one));
      }
    }
    const text = params.toString();
    if (text) {
      url += '?' + text;
    }
  }
  return url;
}

/**
 * Call the job server's REST API: every panel goes through here. Sends
 * Jupyter's authentication (token header, XSRF for cookie sessions) as
 * `ServerConnection` does, and turns any non-2xx answer (or a server that
 * cannot be reached) into a {@link JobServerError} carrying the server's
 * message.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  options: IRequestOptions = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = apiURL(endPoint, options.query, settings);
  if (typeof init.body === 'string' && !hasHeader(init, 'Content-Type')) {
    init = {
      ...init,
      headers: { ...(init.headers as any), 'Content-Type': 'application/json' }
    };
  }
  // "no-cache" revalidates every answer; ServerConnection's default ("no-store") would add
  // a cache-busting query parameter, which the job server refuses as unknown
  init = { cache: 'no-cache', ...init };
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    if ((error as Error)?.name === 'AbortError') {
      throw error;
    }
    throw new JobServerError(
      0,
      'unreachable',
      'The Jupyter server cannot be reached: ' +
        ((error as Error)?.message ?? String(error))
    );
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  const read = options.read ?? 'json';
  if (read === 'response') {
    return response as unknown as T;
  }
  const text = await response.text();
  if (read === 'text') {
    return text as unknown as T;
  }
  if (!text) {
    return undefined as unknown as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new JobServerError(
      response.status,
      'bad_answer',
      `The job server answered ${endPoint || 'the request'} with something that is not JSON`
    );
  }
}

/** The error an unsuccessful answer stands for, with the server's message. */
export async function errorOf(response: Response): Promise<JobServerError> {
  let code = 'error';
  let message = response.statusText || `HTTP ${response.status}`;
  try {
    const body = JSON.parse(await response.text());
    code = body.error ?? code;
    message = body.message ?? body.reason ?? message;
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 503 && code === 'error') {
    message = 'The job server is not available: ' + message;
  }
  return new JobServerError(response.status, code, message);
}

function hasHeader(init: RequestInit, name: string): boolean {
  const headers = init.headers;
  if (!headers) {
    return false;
  }
  if (headers instanceof Headers) {
    return headers.has(name);
  }
  return Object.keys(headers).some(k => k.toLowerCase() === name.toLowerCase());
}
