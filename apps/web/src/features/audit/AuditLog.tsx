'use client';
import { auditQuery } from '@keyflow/api';
import { useInfiniteQuery } from '@tanstack/react-query';
import Link from 'next/link';
import { useState } from 'react';
import { Empty, ErrorState, Loading } from '@/components/States';
import { api, errorMessage, queryKeys } from '@/lib/api';
import { formatDateTime } from '@/lib/format';
import { problemOf } from '@/lib/forms';
import { AUDIT_ACTIONS, auditDetails, auditText } from './auditText';

const PAGE = 50;

/** The audit trail, newest first: who did what, filtered by action and job, a page at a time (`before` the last one shown). */
export function AuditLog() {
  const [action, setAction] = useState('');
  const [jobText, setJobText] = useState('');
  const [jobId, setJobId] = useState('');
  const jobProblem = jobText.trim()
    ? problemOf(auditQuery.shape.jobId, jobText.trim(), 'a job id, like 3f2a…: the 36 characters on the job page')
    : undefined;
  const filter = { ...(action && { action }), ...(jobId && { jobId }) };
  const audit = useInfiniteQuery({
    queryKey: queryKeys.audit(filter),
    queryFn: ({ pageParam }) => api.listAudit({ ...filter, before: pageParam, limit: PAGE }),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => (last.length < PAGE ? undefined : last.at(-1)?.id),
  });
  const rows = audit.data?.pages.flat();

  return (
    <div className="page">
      <div className="page-head">
        <h1>Audit</h1>
      </div>
      <form
        className="card admin-form"
        aria-label="Filter the audit trail"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!jobProblem) setJobId(jobText.trim());
        }}
      >
        <div className="form-row">
          <div className="field">
            <label htmlFor="audit-action">Action</label>
            <select id="audit-action" value={action} onChange={(e) => setAction(e.target.value)}>
              <option value="">any action</option>
              {AUDIT_ACTIONS.map((a) => (
                <option key={a}>{a}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="audit-job">Job</label>
            <input
              id="audit-job"
              className="mono"
              placeholder="any job"
              size={38}
              value={jobText}
              aria-invalid={!!jobProblem}
              aria-describedby={jobProblem ? 'audit-job-error' : undefined}
              onChange={(e) => setJobText(e.target.value)}
            />
            {jobProblem && (
              <span className="field-error" id="audit-job-error">
                {jobProblem}
              </span>
            )}
          </div>
          <button type="submit" disabled={!!jobProblem}>
            Filter
          </button>
          {(action || jobId) && (
            <button type="button" className="link" onClick={() => (setAction(''), setJobText(''), setJobId(''))}>
              Clear filters
            </button>
          )}
        </div>
      </form>
      {audit.isPending ? (
        <Loading label="Loading the audit trail…" />
      ) : rows === undefined ? (
        <ErrorState what="the audit trail" error={audit.error} onRetry={() => void audit.refetch()} />
      ) : rows.length === 0 ? (
        <Empty title={action || jobId ? 'Nothing matches these filters.' : 'Nothing recorded yet.'} />
      ) : (
        <>
          <table className="table" data-testid="audit">
            <thead>
              <tr>
                <th>Time</th>
                <th>Who</th>
                <th>Action</th>
                <th>What</th>
                <th>Job</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id} data-testid="audit-row" data-action={e.action}>
                  <td className="nowrap">{formatDateTime(e.at)}</td>
                  <td>
                    {e.actorLabel}
                    {e.actorKind !== 'user' && <span className="kind-tag">{e.actorKind}</span>}
                  </td>
                  <td className="mono small">{e.action}</td>
                  <td>{auditText(e)}</td>
                  <td>
                    {e.jobId && (
                      <Link href={`/jobs/${e.jobId}`} className="mono small">
                        {e.jobId.slice(0, 8)}
                      </Link>
                    )}
                  </td>
                  <td className="small muted">{auditDetails(e)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {audit.isFetchNextPageError && (
            <p className="field-error" role="alert">
              Could not load more: {errorMessage(audit.error)}
            </p>
          )}
          {audit.hasNextPage ? (
            <button type="button" onClick={() => void audit.fetchNextPage()} disabled={audit.isFetchingNextPage}>
              {audit.isFetchingNextPage ? 'Loading…' : 'Load more'}
            </button>
          ) : (
            <p className="muted small">That is all: {rows.length} entries.</p>
          )}
        </>
      )}
    </div>
  );
}
