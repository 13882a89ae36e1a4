import { Dialog } from '@jupyterlab/apputils';
import {
  FormComponent,
  HTMLSelect,
  ReactWidget
} from '@jupyterlab/ui-components';
import { RJSFSchema } from '@rjsf/utils';
import validator from '@rjsf/validator-ajv8';
import * as React from 'react';

import {
  api,
  BindingType,
  DataBinding,
  IDatafile,
  IDataDocument,
  IJob,
  IJSONSchema,
  IScript
} from './api';
import { ErrorBox } from './components';
import { JobServerModel } from './model';

/** What the run dialog starts with: a script, a datafile to bind, or neither. */
export interface IRunRequest {
  script?: string;
  datafile?: string;
}

/**
 * Something the dialog can run. Only scripts exist today; a notebook job
 * would be another kind, with its own picker and the same parameter form,
 * data section and Run button.
 */
export interface IRunTarget {
  kind: 'script';
  script: IScript;
}

const BINDING_LABELS: Record<BindingType | 'none', string> = {
  none: 'No data',
  datafile: 'Datafile',
  mongodb: 'Stored document',
  raw_data: 'Inline JSON'
};

const DATATYPES = ['json', 'dataframe', 'timeseries', 'ndarray'];

/** Open the run dialog; resolves with the job it started, if any. */
export async function openRunDialog(
  model: JobServerModel,
  request: IRunRequest = {}
): Promise<IJob | null> {
  let started: IJob | null = null;
  const body = new RunDialogBody(
    model,
    request,
    job => {
      started = job;
      dialog.reject(); // closes it; the job is what it resolves to
    },
    () => dialog.reject()
  );
  const dialog = new Dialog({
    title: 'Run a script',
    body,
    // the form has its own Run and Cancel (Run must keep the dialog open on a refusal);
    // this one only answers Escape and Enter, hidden with the footer
    buttons: [Dialog.cancelButton()],
    hasClose: true
  });
  dialog.addClass('jp-JobServer-run-dialog');
  await dialog.launch();
  return started;
}

class RunDialogBody extends ReactWidget {
  constructor(
    private _model: JobServerModel,
    private _request: IRunRequest,
    private _started: (job: IJob) => void,
    private _cancel: () => void
  ) {
    super();
    this.addClass('jp-JobServer-run');
  }

  protected render(): JSX.Element {
    return (
      <RunForm
        model={this._model}
        request={this._request}
        started={this._started}
        cancel={this._cancel}
      />
    );
  }
}

/** The JSON Schema without the server's own annotations (`x-...`). */
function formSchema(schema: IJSONSchema): RJSFSchema {
  const clean = (value: any): any => {
    if (Array.isArray(value)) {
      return value.map(clean);
    }
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        if (!k.startsWith('x-')) {
          out[k] = clean(v);
        }
      }
      return out;
    }
    return value;
  };
  const result = clean(schema);
  result.type = result.type ?? 'object';
  delete result.title;
  return result as RJSFSchema;
}

function RunForm(props: {
  model: JobServerModel;
  request: IRunRequest;
  started: (job: IJob) => void;
  cancel: () => void;
}): JSX.Element {
  const { model, request } = props;
  const [scripts, setScripts] = React.useState<IScript[] | null>(null);
  const [name, setName] = React.useState(request.script ?? '');
  const [values, setValues] = React.useState<Record<string, unknown>>({});
  const [kind, setKind] = React.useState<BindingType | 'none'>('none');
  const [datafiles, setDatafiles] = React.useState<IDatafile[]>([]);
  const [documents, setDocuments] = React.useState<IDataDocument[]>([]);
  const [datafile, setDatafile] = React.useState(request.datafile ?? '');
  const [documentId, setDocumentId] = React.useState('');
  const [inline, setInline] = React.useState('');
  const [datatype, setDatatype] = React.useState('json');
  const [serverError, setServerError] = React.useState<string | null>(null);
  const [loadError, setLoadError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    model
      .scripts(true)
      .then(list => {
        setScripts(list);
        if (!list.length) {
          return;
        }
        const wanted = list.find(s => s.name === request.script);
        // with a datafile to bind, the first script that reads datafiles
        const reader = request.datafile
          ? list.find(s => s.data.includes('datafile'))
          : undefined;
        setName((wanted ?? reader ?? list[0]).name);
      })
      .catch(e => setLoadError((e as Error).message));
    model
      .datafiles()
      .then(setDatafiles)
      .catch(() => undefined);
    api
      .documents()
      .then(setDocuments)
      .catch(() => undefined);
  }, [model]);

  const script = scripts?.find(s => s.name === name) ?? null;
  const schema = React.useMemo(
    () => (script ? formSchema(script.parameters) : null),
    [script]
  );
  // what the form marks, counted the same way for the Run button
  const invalid = schema
    ? validator.validateFormData(values, schema).errors.length
    : 0;
  const target: IRunTarget | null = script ? { kind: 'script', script } : null;
  const kinds: (BindingType | 'none')[] = script
    ? [
        ...(script.data_parameter?.required ? [] : ['none' as const]),
        ...script.data
      ]
    : ['none'];

  React.useEffect(() => {
    if (!script) {
      return;
    }
    setValues({});
    setServerError(null);
    if (request.datafile && script.data.includes('datafile')) {
      setKind('datafile');
    } else {
      setKind(kinds[0]);
    }
  }, [script?.name]);

  let inlineError: string | null = null;
  let inlineValue: unknown = undefined;
  if (kind === 'raw_data') {
    if (!inline.trim()) {
      inlineError = 'Write the data as JSON';
    } else {
      try {
        inlineValue = JSON.parse(inline);
      } catch (e) {
        inlineError = `Not JSON: ${(e as Error).message}`;
      }
    }
  }

  const binding = (): DataBinding | null => {
    switch (kind) {
      case 'datafile':
        return { type: 'datafile', name: datafile };
      case 'mongodb':
        return { type: 'mongodb', id: documentId };
      case 'raw_data':
        return { type: 'raw_data', data: inlineValue, datatype };
      default:
        return null;
    }
  };

  const dataMissing =
    (kind === 'datafile' && !datafile) ||
    (kind === 'mongodb' && !documentId) ||
    (kind === 'raw_data' && inlineError !== null);
  const canRun = !!target && !busy && invalid === 0 && !dataMissing;

  const run = async () => {
    if (!target) {
      return;
    }
    setBusy(true);
    setServerError(null);
    const kwargs: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(values)) {
      if (value !== undefined) {
        kwargs[key] = value;
      }
    }
    try {
      const job = await api.createJob({
        script: target.script.name,
        kwargs,
        data: binding(),
        run: true
      });
      model.track(job);
      props.started(job);
    } catch (e) {
      // a 400 names the parameter: it stays next to the form, which stays open
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
  const hasParameters =
    !!script && Object.keys(script.parameters.properties ?? {}).length > 0;
  return (
    <div className="jp-JobServer-run-form">
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
          <div className="jp-JobServer-muted">
            version {script.version} · {script.process}
          </div>
        </div>
      ) : null}
      <h3>Parameters</h3>
      {script && hasParameters ? (
        <div className="jp-JobServer-parameters">
          <FormComponent
            key={script.name}
            schema={schema!}
            formData={values as any}
            validator={validator as any}
            liveValidate
            showErrorList={false}
            noHtml5Validate
            onChange={e => {
              setValues((e.formData ?? {}) as Record<string, unknown>);
              setServerError(null);
            }}
          />
        </div>
      ) : (
        <div className="jp-JobServer-muted">
          This script takes no parameters.
        </div>
      )}
      <h3>Data</h3>
      {kinds.length > 1 ? (
        <div className="jp-JobServer-kinds" role="radiogroup" aria-label="Data">
          {kinds.map(k => (
            <label key={k}>
              <input
                type="radio"
                name="jobserver-data-kind"
                value={k}
                checked={kind === k}
                onChange={() => setKind(k)}
              />
              {BINDING_LABELS[k]}
            </label>
          ))}
        </div>
      ) : null}
      {kind === 'none' ? (
        <div className="jp-JobServer-muted">
          {script?.data.length
            ? 'The job reads no data.'
            : 'This script reads no data.'}
        </div>
      ) : null}
      {kind === 'datafile' ? (
        <label className="jp-JobServer-field">
          <span>Datafile</span>
          <HTMLSelect
            aria-label="Datafile name"
            value={datafile}
            onChange={e => setDatafile(e.currentTarget.value)}
          >
            <option value="">Choose a datafile</option>
            {datafiles.map(f => (
              <option key={f.name} value={f.name}>
                {f.name}
              </option>
            ))}
            {datafile && !datafiles.some(f => f.name === datafile) ? (
              <option value={datafile}>{datafile}</option>
            ) : null}
          </HTMLSelect>
        </label>
      ) : null}
      {kind === 'mongodb' ? (
        <label className="jp-JobServer-field">
          <span>Document</span>
          <HTMLSelect
            aria-label="Document name"
            value={documentId}
            onChange={e => setDocumentId(e.currentTarget.value)}
          >
            <option value="">
              {documents.length ? 'Choose a document' : 'No stored documents'}
            </option>
            {documents.map(d => (
              <option key={d.id} value={d.id}>
                {d.name} ({d.datatype})
              </option>
            ))}
          </HTMLSelect>
        </label>
      ) : null}
      {kind === 'raw_data' ? (
        <div className="jp-JobServer-inline">
          <label className="jp-JobServer-field">
            <span>Datatype</span>
            <HTMLSelect
              aria-label="Datatype"
              value={datatype}
              onChange={e => setDatatype(e.currentTarget.value)}
            >
              {DATATYPES.map(d => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </HTMLSelect>
          </label>
          <textarea
            className="jp-mod-styled jp-JobServer-json"
            aria-label="Inline data (JSON)"
            placeholder='[{"value": 1}, {"value": 2}]'
            value={inline}
            onChange={e => setInline(e.target.value)}
            rows={6}
          />
          {inline.trim() && inlineError ? (
            <div className="jp-JobServer-field-error">{inlineError}</div>
          ) : null}
        </div>
      ) : null}
      <ErrorBox message={serverError} />
      <div className="jp-JobServer-run-buttons">
        {invalid ? (
          <span className="jp-JobServer-field-error jp-JobServer-invalid-summary">
            {invalid === 1 ? 'One value' : `${invalid} values`} to correct
          </span>
        ) : null}
        <button
          className="jp-Dialog-button jp-mod-reject jp-mod-styled"
          onClick={props.cancel}
        >
          <div className="jp-Dialog-buttonLabel">Cancel</div>
        </button>
        <button
          className="jp-Dialog-button jp-mod-accept jp-mod-styled jp-JobServer-run-button"
          disabled={!canRun}
          onClick={() => void run()}
        >
          <div className="jp-Dialog-buttonLabel">
            {busy ? 'Starting…' : 'Run'}
          </div>
        </button>
      </div>
    </div>
  );
}
