'use client';
import type { Pipeline } from '@keyflow/api';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import Link from 'next/link';
import { useState } from 'react';
import { ConfirmDialog } from '@/components/ConfirmDialog';
import { StateBadge } from '@/components/StateBadge';
import { Empty, ErrorState, Loading } from '@/components/States';
import { TemplateMenu } from '@/features/builder/TemplateMenu';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { useMayAct } from '@/lib/auth';
import { formatAgo, formatDateTime } from '@/lib/format';
import { isActive, useJobs, usePipeline, usePipelines } from '@/lib/queries';

function Versions({ id }: { id: string }) {
  const pipeline = usePipeline(id);
  if (pipeline.isPending) return <Loading label="Loading versions…" />;
  if (pipeline.data === undefined) return <ErrorState what="the versions" error={pipeline.error} onRetry={() => void pipeline.refetch()} />;
  return (
    <table className="table nested" data-testid="versions">
      <thead>
        <tr>
          <th>Version</th>
          <th>Saved</th>
          <th>Operators</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {pipeline.data.versions?.map((v) => {
          const graph = v.graph as { vertices?: { id: string; parallelism: number }[] };
          return (
            <tr key={v.id}>
              <td>v{v.version}</td>
              <td>{formatDateTime(v.createdAt)}</td>
              <td className="mono small">{graph.vertices?.map((x) => `${x.id}×${x.parallelism}`).join(' → ')}</td>
              <td>
                <Link href={`/pipelines/${id}?version=${v.version}`}>Open</Link>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function RenameForm({ pipeline, onDone }: { pipeline: Pipeline; onDone: () => void }) {
  const client = useQueryClient();
  const [name, setName] = useState(pipeline.name);
  const rename = useMutation({
    mutationFn: () => api.renamePipeline(pipeline.id, name.trim()),
    onSuccess: (saved) => {
      client.setQueryData(queryKeys.pipeline(saved.id), saved);
      void client.invalidateQueries({ queryKey: queryKeys.pipelines, exact: true });
      void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      onDone();
    },
  });
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (name.trim() && name.trim() !== pipeline.name) rename.mutate();
        else onDone();
      }}
    >
      <input
        aria-label="New name"
        value={name}
        autoFocus
        maxLength={100}
        onChange={(e) => setName(e.target.value)}
        onKeyDown={(e) => e.key === 'Escape' && onDone()}
      />
      <button type="submit" disabled={rename.isPending || !name.trim()}>
        {rename.isPending ? 'Saving…' : 'Rename'}
      </button>
      <button type="button" onClick={onDone}>
        Cancel
      </button>
      {rename.isError && <span className="field-error">{errorMessage(rename.error)}</span>}
    </form>
  );
}

/** Pipelines: list, open, rename, see versions, delete (with confirmation). */
export function PipelineList() {
  const pipelines = usePipelines();
  const jobs = useJobs();
  const client = useQueryClient();
  const mayEdit = useMayAct('operator');
  const [open, setOpen] = useState<string>();
  const [renaming, setRenaming] = useState<string>();
  const [deleting, setDeleting] = useState<Pipeline>();
  const remove = useMutation({
    mutationFn: (p: Pipeline) => api.deletePipeline(p.id),
    onSuccess: (_, p) => {
      client.setQueryData<Pipeline[]>(queryKeys.pipelines, (list) => list?.filter((x) => x.id !== p.id));
      client.removeQueries({ queryKey: queryKeys.pipeline(p.id) });
      void client.invalidateQueries({ queryKey: queryKeys.jobs, exact: true });
      setDeleting(undefined);
    },
  });
  const activeJobs = (id: string) => jobs.data?.filter((j) => j.pipelineId === id && isActive(j.state)) ?? [];

  return (
    <div className="page">
      <div className="page-head">
        <h1>Pipelines</h1>
        {mayEdit && (
          <div className="head-stats">
            <TemplateMenu align="right" />
            <Link href="/pipelines/new" className="button primary">
              New pipeline
            </Link>
          </div>
        )}
      </div>
      {pipelines.isPending ? (
        <Loading label="Loading pipelines…" />
      ) : pipelines.data === undefined ? (
        <ErrorState what="the pipelines" error={pipelines.error} onRetry={() => void pipelines.refetch()} />
      ) : pipelines.data.length === 0 ? (
        <Empty title="No pipelines yet.">
          {mayEdit ? (
            <>
              <Link href="/pipelines/new">Draw your first pipeline</Link>: drag a source, a keyed operator and a sink onto the canvas.
            </>
          ) : (
            'An operator draws them; you will see them here.'
          )}
        </Empty>
      ) : (
        <table className="table" data-testid="pipelines">
          <thead>
            <tr>
              <th>Name</th>
              <th>Latest version</th>
              <th>Updated</th>
              <th>Jobs</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {pipelines.data.map((p) => {
              const active = activeJobs(p.id);
              return [
                <tr key={p.id} data-testid={`pipeline-${p.name}`}>
                  <td>
                    {renaming === p.id ? (
                      <RenameForm pipeline={p} onDone={() => setRenaming(undefined)} />
                    ) : (
                      <Link href={`/pipelines/${p.id}`}>
                        <strong>{p.name}</strong>
                      </Link>
                    )}
                  </td>
                  <td>
                    <button type="button" className="link" aria-expanded={open === p.id} onClick={() => setOpen(open === p.id ? undefined : p.id)}>
                      v{p.latestVersion} {open === p.id ? '▾' : '▸'} versions
                    </button>
                  </td>
                  <td title={formatDateTime(p.updatedAt)}>{formatAgo(p.updatedAt)}</td>
                  <td>
                    {active.map((j) => (
                      <Link key={j.id} href={`/jobs/${j.id}`} className="job-chip">
                        <StateBadge state={j.state} />
                      </Link>
                    ))}
                    {active.length === 0 && <span className="muted">none running</span>}
                  </td>
                  <td className="actions">
                    <Link href={`/pipelines/${p.id}`}>{mayEdit ? 'Edit' : 'Open'}</Link>
                    {mayEdit && (
                      <>
                        <button type="button" className="link" onClick={() => setRenaming(p.id)}>
                          Rename
                        </button>
                        <button type="button" className="link danger" onClick={() => (remove.reset(), setDeleting(p))}>
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>,
                open === p.id && (
                  <tr key={`${p.id}-versions`}>
                    <td colSpan={5}>
                      <Versions id={p.id} />
                    </td>
                  </tr>
                ),
              ];
            })}
          </tbody>
        </table>
      )}
      <ConfirmDialog
        open={!!deleting}
        title={`Delete pipeline “${deleting?.name}”?`}
        confirmLabel="Delete pipeline"
        busy={remove.isPending}
        onConfirm={() => deleting && remove.mutate(deleting)}
        onCancel={() => setDeleting(undefined)}
      >
        <p>All its versions go with it, and so do its finished jobs with their lifecycle events and checkpoints.</p>
        {deleting && activeJobs(deleting.id).length > 0 && (
          <p className="warn-text">It has running jobs: the control plane refuses until they are stopped or canceled.</p>
        )}
        {remove.isError && <p className="field-error">{errorMessage(remove.error)}</p>}
      </ConfirmDialog>
    </div>
  );
}
