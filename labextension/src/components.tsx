import * as React from 'react';

/** `1.5 MB`, decimal units as file browsers show them. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) {
    return `${bytes} B`;
  }
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A time in the reader's own zone and language. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 120) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

export function StatusBadge(props: { status: string }): JSX.Element {
  return (
    <span
      className={`jp-JobServer-status jp-JobServer-status-${props.status}`}
      data-status={props.status}
    >
      {props.status}
    </span>
  );
}

export function ProgressBar(props: {
  fraction: number | null | undefined;
  label?: string;
}): JSX.Element {
  const known = typeof props.fraction === 'number';
  const percent = known ? Math.max(0, Math.min(1, props.fraction!)) * 100 : 0;
  return (
    <div
      className="jp-JobServer-progress"
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={known ? Math.round(percent) : undefined}
      aria-label={props.label}
    >
      <div
        className={
          'jp-JobServer-progress-bar' +
          (known ? '' : ' jp-JobServer-progress-indeterminate')
        }
        style={{ width: known ? `${percent}%` : undefined }}
      />
    </div>
  );
}

/** A JSON value as a tree whose objects and arrays open and close. */
export function JSONTree(props: {
  value: unknown;
  name?: string;
  open?: boolean;
}): JSX.Element {
  const { value, name } = props;
  const label =
    name !== undefined ? (
      <span className="jp-JobServer-key">{name}: </span>
    ) : null;
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value)
      ? value.map((v, i) => [String(i), v] as [string, unknown])
      : Object.entries(value as Record<string, unknown>);
    const summary = Array.isArray(value)
      ? `[${entries.length}]`
      : `{${entries.length}}`;
    return (
      <details
        className="jp-JobServer-tree"
        open={props.open ?? entries.length <= 12}
      >
        <summary>
          {label}
          <span className="jp-JobServer-tree-summary">{summary}</span>
        </summary>
        <div className="jp-JobServer-tree-children">
          {entries.map(([k, v]) => (
            <JSONTree key={k} name={k} value={v} open={false} />
          ))}
        </div>
      </details>
    );
  }
  return (
    <div className="jp-JobServer-tree-leaf">
      {label}
      <span
        className={`jp-JobServer-json-${value === null ? 'null' : typeof value}`}
      >
        {JSON.stringify(value)}
      </span>
    </div>
  );
}

export interface ITable {
  columns: string[];
  index?: string[] | null;
  rows: unknown[][];
}

/**
 * A result as a table when it is one: a DataFrame as the job server stores
 * it (`{"$type": "dataframe", ...}`), a Series, or a list of records.
 */
export function asTable(value: unknown): ITable | null {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const tagged = value as Record<string, any>;
    if (tagged.$type === 'dataframe' && Array.isArray(tagged.data)) {
      return {
        columns: (tagged.columns ?? []).map((c: unknown) => cell(c)),
        index: (tagged.index ?? []).map((c: unknown) => cell(c)),
        rows: tagged.data
      };
    }
    if (tagged.$type === 'series' && Array.isArray(tagged.data)) {
      return {
        columns: [cell(tagged.name ?? 'value')],
        index: (tagged.index ?? []).map((c: unknown) => cell(c)),
        rows: tagged.data.map((v: unknown) => [v])
      };
    }
  }
  if (
    Array.isArray(value) &&
    value.length &&
    value.every(r => r && typeof r === 'object' && !Array.isArray(r))
  ) {
    const columns: string[] = [];
    for (const record of value as Record<string, unknown>[]) {
      for (const key of Object.keys(record)) {
        if (!columns.includes(key)) {
          columns.push(key);
        }
      }
    }
    return {
      columns,
      rows: (value as Record<string, unknown>[]).map(r =>
        columns.map(c => r[c])
      )
    };
  }
  return null;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export function Table(props: { table: ITable; limit?: number }): JSX.Element {
  const { table } = props;
  const rows = props.limit ? table.rows.slice(0, props.limit) : table.rows;
  const index = table.index && table.index.length ? table.index : null;
  return (
    <div className="jp-JobServer-table-wrap">
      <table className="jp-JobServer-table">
        <thead>
          <tr>
            {index ? <th /> : null}
            {table.columns.map((c, i) => (
              <th key={i}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, r) => (
            <tr key={r}>
              {index ? <th>{index[r]}</th> : null}
              {row.map((v, c) => (
                <td
                  key={c}
                  className={typeof v === 'number' ? 'jp-JobServer-number' : ''}
                >
                  {cell(v)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      {props.limit && table.rows.length > props.limit ? (
        <div className="jp-JobServer-muted">
          The first {props.limit} of {table.rows.length} rows.
        </div>
      ) : null}
    </div>
  );
}

/** A message in the colours of an error. */
export function ErrorBox(props: {
  message: string | null;
}): JSX.Element | null {
  if (!props.message) {
    return null;
  }
  return (
    <div className="jp-JobServer-error" role="alert">
      {props.message}
    </div>
  );
}
