import { Dialog } from '@jupyterlab/apputils';
import { HTMLSelect, ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IDatafile, IJSONSchema, IScript } from './api';
import { ErrorBox } from './components';
import { JobServerModel } from './model';
import { ISweep, sweepAPI } from './sweepapi';

/** What the sweep dialog starts with: a script, datafiles to run on, or neither. */
export interface ISweepRequest {
  script?: string;
  datafiles?: string[];
}

/** Open the sweep dialog; resolves with the sweep it started, if any. */
export async function openSweepDialog(
  model: JobServerModel,
  request: ISweepRequest = {}
): Promise<ISweep | null> {
  let started: ISweep | null = null;
  const body = new SweepDialogBody(
    model,
    request,
    sweep => {
      started = sweep;
      dialog.reject();
    },
    () => dialog.reject()
  );
  const dialog = new Dialog({
    title: 'Start a sweep',
    body,
    // the form has its own Start and Cancel, so a refusal keeps it open
    buttons: [Dialog.cancelButton()],
    hasClose: true
  });
  dialog.addClass('jp-JobServer-run-dialog');
  await dialog.launch();
  return started;
}

class SweepDialogBody extends ReactWidget {
  constructor(
    private _model: JobServerModel,
    private _request: ISweepRequest,
    private _started: (sweep: ISweep) => void,
    private _cancel: () => void
  ) {
    super();
    this.addClass('jp-JobServer-run');
  }

  protected render(): JSX.Element {
    return (
      <SweepForm
        model={this._model}
        request={this._request}
        started={this._started}
        cancel={this._cancel}
      />
    );
  }
}

/** The values a person wrote for one parameter, comma-separated, as JSON values. */
export function parseValues(
  text: string,
  schema: IJSONSchema
): { values: unknown[] } | { error: string } {
  const types = ([] as string[]).concat(schema.type ?? []);
  const scalar = ['integer', 'number', 'boolean', 'string'];
  if (types.length && !types.some(t => scalar.includes(t))) {
    // lists and objects: the values are JSON, separated by commas
    if (!text.trim()) {
      return { values: [] };
    }
    try {
      return { values: JSON.parse(`[${text}]`) as unknown[] };
    } catch {
      return { error: 'write JSON values separated by commas' };
    }
  }
  const parts = text
    .split(',')
    .map(p => p.trim())
    .filter(p => p !== '');
  const values: unknown[] = [];
  for (const part of parts) {
    if (types.includes('integer') || types.includes('number')) {
      const value = Number(part);
      if (!Number.isFinite(value)) {
        return { error: `${part} is not a number` };
      }
      if (!types.includes('number') && !Number.isInteger(value)) {
        return { error: `${part} is not a whole number` };
      }
      values.push(value);
    } else if (types.includes('boolean')) {
      if (part !== 'true' && part !== 'false') {
        return { error: `${part}: write true or false` };
      }
      values.push(part === 'true');
    } else if (types.includes('string') || !types.length) {
      values.push(part);
    } else {
      try {
        values.push(JSON.parse(part));
      } catch {
        return { error: `${part} is not JSON` };
      }
    }
  }
  return { values };
}

function SweepForm(props: {
  model: JobServerModel;
  request: ISweepRequest;
  started: (sweep: ISweep) => void;
  cancel: () => void;
}): JSX.Element {
  const { model, request } = props;
  const [scripts, setScripts] = React.useState<IScript[] | null>(null);
  const [name, setName] = React.useState(request.script ?? '');
  const [texts, setTexts] = React.useState<Record<string, string>>({});
  const [datafiles, setDatafiles] = React.useState<IDatafile[]>([]);
  const [chosen, setChosen] = React.useState<string[]>(request.datafiles ?? []);
  const [serverError, setServerError] = React.useState<string | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    model
      .scripts(true)
      .then(list => {
        setScripts(list);
        const wanted = list.find(s => s.name === request.script);
        const reader = request.datafiles?.length
          ? list.find(s => s.data.includes('datafile'))
          : undefined;
        const first = wanted ?? reader ?? list[0];
        if (first) {
          setName(first.name);
        }
      })
      .catch(e => setLoadError((e as Error).message));
    model
      .datafiles()
      .then(setDatafiles)
      .catch(() => undefined);
  }, [model]);

  const script = scripts?.find(s => s.name === name) ?? null;
  const properties = script?.parameters.properties ?? {};
  const required = new Set(script?.parameters.required ?? []);
  const readsFiles = !!script?.data.includes('datafile');

  React.useEffect(() => {
    setTexts({});
    setServerError(null);
  }, [name]);

  const grid: Record<string, unknown[]> = {};
  const errors: Record<string, string> = {};
  for (const [parameter, schema] of Object.entries(properties)) {
    const parsed = parseValues(texts[parameter] ?? '', schema);
    if ('error' in parsed) {
      errors[parameter] = parsed.error;
    } else if (parsed.values.length) {
      grid[parameter] = parsed.values;
    } else if (required.has(parameter)) {
      errors[parameter] = 'give at least one value';
    }
  }
  const files = readsFiles ? chosen : [];
  const size =
    Object.values(grid).reduce((n, values) => n * values.length, 1) *
    (files.length || 1);
  const invalid = Object.keys(errors).length;
  const needsFile = !!script?.data_parameter?.required && !files.length;
  const canStart = !!script && !busy && invalid === 0 && !needsFile;

  const start = async () => {
    if (!script) {
      return;
    }
    setBusy(true);
    setServerError(null);
    try {
      const sweep = await sweepAPI.create({
        script: script.name,
        grid,
        datafiles: files.length ? files : undefined,
        run: true
      });
      props.started(sweep);
    } catch (e) {
      // a 400 names the parameter and value: it stays next to the form
      setServerError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (loadError) {
    return <ErrorBox message={`The scripts cannot be listed: ${loadError}`} />;
  }
  if (!scripts) {
    return <div className="jp-JobServer-muted">Loading scripts…</div>;
  }
  if (!scripts.length) {
    return (
      <div className="jp-JobServer-empty">
        The job server offers no scripts.
      </div>
    );
  }
  const listed = [
    ...datafiles.map(f => f.name),
    ...chosen.filter(c => !datafiles.some(f => f.name === c))
  ];
  return (
    <div className="jp-JobServer-run-form jp-JobServer-sweep-form">
      <label className="jp-JobServer-field">
        <span>Script</span>
        <HTMLSelect
          aria-label="Script"
          value={name}
          onChange={e => setName(e.currentTarget.value)}
        >
          {scripts.map(s => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </HTMLSelect>
      </label>
      {script ? (
        <div className="jp-JobServer-script-description">
          {script.description || 'No description.'}
        </div>
      ) : null}
      <h3>Values</h3>
      <div className="jp-JobServer-muted">
        One job for every combination: write each parameter&apos;s values
        separated by commas; leave a field empty for its default.
      </div>
      {Object.keys(properties).length ? null : (
        <div className="jp-JobServer-muted">
          This script takes no parameters.
        </div>
      )}
      {Object.entries(properties).map(([parameter, schema]) => (
        <label key={parameter} className="jp-JobServer-field">
          <span>
            {schema.title ?? parameter}
            {required.has(parameter) ? ' *' : ''}
          </span>
          <input
            className="jp-mod-styled"
            aria-label={`Values of ${parameter}`}
            placeholder={
              schema.default !== undefined
                ? `default ${JSON.stringify(schema.default)}`
                : ([] as string[]).concat(schema.type ?? []).join(' or ')
            }
            value={texts[parameter] ?? ''}
            onChange={e =>
              setTexts({ ...texts, [parameter]: e.currentTarget.value })
            }
          />
          {errors[parameter] ? (
            <span className="jp-JobServer-field-error">
              {errors[parameter]}
            </span>
          ) : null}
        </label>
      ))}
      {readsFiles ? (
        <>
          <h3>Datafiles</h3>
          <div className="jp-JobServer-muted">
            Each chosen datafile runs every combination.
          </div>
          <div
            className="jp-JobServer-sweep-files"
            role="group"
            aria-label="Datafiles"
          >
            {listed.length ? null : (
              <div className="jp-JobServer-muted">No datafiles yet.</div>
            )}
            {listed.map(file => (
              <label key={file}>
                <input
                  type="checkbox"
                  checked={chosen.includes(file)}
                  onChange={e =>
                    setChosen(
                      e.currentTarget.checked
                        ? [...chosen, file]
                        : chosen.filter(c => c !== file)
                    )
                  }
                />
                {file}
              </label>
            ))}
          </div>
        </>
      ) : null}
      <ErrorBox message={serverError} />
      <div className="jp-JobServer-run-buttons">
        <span className="jp-JobServer-muted" aria-label="Sweep size">
          {invalid
            ? `${invalid === 1 ? 'One parameter' : `${invalid} parameters`} to correct`
            : needsFile
              ? 'Choose a datafile'
              : `${size} ${size === 1 ? 'job' : 'jobs'}`}
        </span>
        <button
          className="jp-Dialog-button jp-mod-reject jp-mod-styled"
          onClick={props.cancel}
        >
          <div className="jp-Dialog-buttonLabel">Cancel</div>
        </button>
        <button
          className="jp-Dialog-button jp-mod-accept jp-mod-styled jp-JobServer-start-sweep"
          disabled={!canStart}
          onClick={() => void start()}
        >
          <div className="jp-Dialog-buttonLabel">
            {busy ? 'Starting…' : 'Start sweep'}
          </div>
        </button>
      </div>
    </div>
  );
}
