'use client';
import { ApiRequestError, type Pipeline } from '@keyflow/api';
import { pipelineTemplate, type GraphIssue } from '@keyflow/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { ReactFlowProvider } from '@xyflow/react';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useEffect, useMemo, useState } from 'react';
import { Empty } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { useMayAct } from '@/lib/auth';
import { useWorkers } from '@/lib/queries';
import { BuilderCanvas } from './BuilderCanvas';
import { emptyDoc, fromGraph, toGraph, type BuilderDoc } from './builderGraph';
import { layoutDoc } from './layout';
import { parseNumber, type NumberRule } from './numberInput';
import { Palette } from './Palette';
import { SettingsPanel } from './SettingsPanel';
import { TemplateMenu } from './TemplateMenu';
import { useBuilder } from './useBuilder';
import { LEAVE_MESSAGE, useLeaveGuard } from './useLeaveGuard';
import { poolWarning, slotsNeeded } from './warnings';

/** The checkpoint interval the control plane accepts (100 ms to an hour), in seconds. */
const CHECKPOINT_INTERVAL: NumberRule = { integer: false, min: 0.1, max: 3600, required: true, unit: ' s' };

function initialDoc(graph: unknown): BuilderDoc {
  if (graph === undefined) return emptyDoc;
  const { doc, placed } = fromGraph(graph);
  return placed ? doc : layoutDoc(doc);
}

const sameGraph = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

interface Props {
  /** The pipeline being edited; none for a new one. */
  pipeline?: Pipeline;
  /** The version shown on the canvas. */
  version?: number;
  /** A new pipeline's template (its id): the canvas starts with its graph, unsaved, named after it. */
  templateId?: string;
}

function BuilderScreen({ pipeline, version, templateId, readOnly }: Props & { readOnly: boolean }) {
  const router = useRouter();
  const client = useQueryClient();
  const shown = pipeline?.versions?.find((v) => v.version === version);
  // Made once per template opened: it stamps the generators' start with the time it was opened.
  const template = useMemo(() => (!pipeline && templateId !== undefined ? pipelineTemplate(templateId) : undefined), [pipeline, templateId]);
  const startGraph = shown?.graph ?? template?.graph;
  const savedGraph = useMemo(() => (shown ? toGraph(initialDoc(shown.graph)) : undefined), [shown]);
  const builder = useBuilder(useMemo(() => initialDoc(startGraph), [startGraph]));
  const [name, setName] = useState(pipeline?.name ?? template?.name ?? '');
  const [intervalText, setIntervalText] = useState('10');
  const interval = parseNumber(intervalText, CHECKPOINT_INTERVAL);
  const intervalMs = interval.ok && interval.value !== undefined ? Math.round(interval.value * 1000) : undefined;
  const [serverIssues, setServerIssues] = useState<GraphIssue[]>([]);

  const { load } = builder;
  useEffect(() => load(initialDoc(startGraph)), [startGraph, load]);

  const graph = toGraph(builder.doc);
  const unparsed = builder.issues.unparsed.length;
  const valid = builder.issues.all.length === 0 && builder.doc.nodes.length > 0;
  const workers = useWorkers();
  const pool = poolWarning(slotsNeeded(graph), workers.data);

  /** Saves the canvas as a new pipeline or a new version; answers the pipeline and the version saved. */
  const save = useMutation({
    mutationFn: async (): Promise<{ pipeline: Pipeline; version: number }> => {
      setServerIssues([]);
      const saved = pipeline ? await api.createVersion(pipeline.id, graph) : await api.createPipeline({ name: name.trim(), graph });
      return { pipeline: saved, version: saved.latestVersion };
    },
    onSuccess: ({ pipeline: saved, version: v }) => {
      client.setQueryData(queryKeys.pipeline(saved.id), saved);
      void client.invalidateQueries({ queryKey: queryKeys.pipelines, exact: true });
      if (!pipeline || v !== version) router.replace(`/pipelines/${saved.id}?version=${v}`);
    },
    onError: (error) => {
      if (error instanceof ApiRequestError && error.body.issues) setServerIssues(error.body.issues);
    },
  });

  // A new pipeline just saved is on its way to its own page; typed text that is no valid value is not saved either.
  const changed = savedGraph ? !sameGraph(graph, savedGraph) : builder.doc.nodes.length > 0 && !save.isSuccess;
  const dirty = changed || unparsed > 0;
  useLeaveGuard(dirty);

  const deploy = useMutation({
    mutationFn: async (checkpointIntervalMs: number) => {
      const target = dirty ? await save.mutateAsync() : { pipeline: pipeline!, version: version! };
      return api.deployJob({ pipelineId: target.pipeline.id, version: target.version, checkpointIntervalMs });
    },
    onSuccess: (job) => {
      void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      router.push(`/jobs/${job.id}`);
    },
  });

  const nameProblem = !pipeline && !name.trim() ? 'Give the pipeline a name to save it' : undefined;
  const unparsedProblem = unparsed > 0 ? `Fix the field${unparsed > 1 ? 's' : ''} marked in red first` : undefined;
  const deployProblem =
    nameProblem ?? unparsedProblem ?? (!interval.ok ? `Checkpoint interval: ${interval.message}` : !valid ? 'Fix the problems first' : undefined);
  const busy = save.isPending || deploy.isPending;
  const error = deploy.error ?? save.error;
  const savedVersion = version ?? save.data?.version;

  return (
    <div className="builder">
      <div className="toolbar" role="toolbar" aria-label="Pipeline">
        {pipeline ? (
          <h1 className="toolbar-title">{pipeline.name}</h1>
        ) : (
          <input
            className="name-input"
            aria-label="Pipeline name"
            placeholder="Pipeline name"
            value={name}
            maxLength={100}
            onChange={(e) => setName(e.target.value)}
          />
        )}
        {pipeline && (
          <select
            aria-label="Version"
            value={version}
            onChange={(e) => (!dirty || window.confirm(LEAVE_MESSAGE)) && router.replace(`/pipelines/${pipeline.id}?version=${e.target.value}`)}
          >
            {pipeline.versions?.map((v) => (
              <option key={v.version} value={v.version}>
                version {v.version}
                {v.version === pipeline.latestVersion ? ' (latest)' : ''}
              </option>
            ))}
          </select>
        )}
        {readOnly ? (
          <span className="muted" data-testid="read-only-note">
            Read only: saving, renaming and deploying need the operator role.
          </span>
        ) : (
          <span className={`dirty ${dirty ? 'on' : ''}`} data-testid="save-state">
            {dirty ? 'Unsaved changes' : savedVersion === undefined ? 'Not saved yet' : `Saved as version ${savedVersion}`}
          </span>
        )}
        <span className="spacer" />
        {!readOnly && (
          <>
            <TemplateMenu align="right" />
            <button type="button" onClick={builder.undo} disabled={!builder.canUndo} title="Undo (Ctrl+Z)">
              ↶ Undo
            </button>
            <button type="button" onClick={builder.redo} disabled={!builder.canRedo} title="Redo (Ctrl+Shift+Z)">
              ↷ Redo
            </button>
            <button type="button" onClick={builder.autoLayout} disabled={!builder.doc.nodes.length}>
              Auto layout
            </button>
            <button
              type="button"
              onClick={() => save.mutate()}
              disabled={busy || !dirty || !!nameProblem || !!unparsedProblem || !builder.doc.nodes.length}
              title={
                nameProblem ?? unparsedProblem ?? (valid ? undefined : 'The control plane will refuse an invalid pipeline; see the problems listed')
              }
            >
              {save.isPending ? 'Saving…' : pipeline ? 'Save as new version' : 'Save pipeline'}
            </button>
            <label className="interval" title="How often the job checkpoints">
              checkpoint every
              <input
                type="text"
                inputMode="decimal"
                value={intervalText}
                aria-label="Checkpoint interval (s)"
                aria-invalid={!interval.ok}
                aria-describedby={interval.ok ? undefined : 'interval-error'}
                onChange={(e) => setIntervalText(e.target.value)}
              />
              s
            </label>
            {!interval.ok && (
              <span className="field-error" id="interval-error" role="alert">
                {interval.message}
              </span>
            )}
            {pool && (
              <span className="warn-text small" role="status" data-testid="pool-warning">
                ⚠ {pool}
              </span>
            )}
            <button
              type="button"
              className="primary"
              onClick={() => intervalMs !== undefined && deploy.mutate(intervalMs)}
              disabled={busy || !!deployProblem}
              title={deployProblem ?? (dirty ? 'Saves a new version, then deploys it' : `Deploys version ${version}`)}
            >
              {deploy.isPending ? 'Deploying…' : 'Deploy'}
            </button>
          </>
        )}
      </div>
      {(error || serverIssues.length > 0) && (
        <div className="banner banner-error" role="alert">
          <strong>{deploy.error ? 'Could not deploy.' : 'Could not save.'}</strong> {error && errorMessage(error)}
          {serverIssues.length > 0 && (
            <ul>
              {serverIssues.map((i, n) => (
                <li key={n}>{i.message}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div className={readOnly ? 'builder-body read-only' : 'builder-body'}>
        {!readOnly && <Palette onAdd={(type) => builder.addOperator(type)} />}
        <BuilderCanvas builder={builder} readOnly={readOnly} />
        <SettingsPanel builder={builder} poolWarning={readOnly ? undefined : pool} readOnly={readOnly} />
      </div>
    </div>
  );
}

/**
 * The pipeline builder: palette, canvas and side panel, with save and deploy. Someone who may not edit pipelines (a
 * viewer) gets a stored pipeline read-only (the graph and its settings, no palette and no save or deploy) and no
 * blank canvas at all.
 */
export function PipelineBuilder(props: Props) {
  const readOnly = !useMayAct('operator');
  if (readOnly && !props.pipeline)
    return (
      <div className="page">
        <Empty title="Drawing a pipeline needs the operator role.">
          <Link href="/pipelines">See the pipelines</Link> instead, or ask an admin for the operator role.
        </Empty>
      </div>
    );
  return (
    <ReactFlowProvider>
      <BuilderScreen {...props} readOnly={readOnly} />
    </ReactFlowProvider>
  );
}
