'use client';
import type { JobDetail } from '@keyflow/api';
import { useLateRecords } from '@/lib/queries';
import { OperatorSamples, type SampleKind } from './DeadLetters';

const LATE_RECORDS: SampleKind = {
  noun: 'late records',
  testId: 'late-record',
  totalHelp: 'records that came after their window had fired and its allowed lateness had passed, since the job started',
  tone: 'warn',
};

/** A window operator's late records: its running total and the newest samples the control plane keeps, with the reason. */
export function OperatorLateRecords({ job, vertexId, name, total }: { job: JobDetail; vertexId: string; name: string; total: number }) {
  const live = job.state === 'RUNNING' || job.state === 'RESCALING';
  const late = useLateRecords(job.id, vertexId, live);
  return <OperatorSamples kind={LATE_RECORDS} samples={late} vertexId={vertexId} name={name} total={total} />;
}
