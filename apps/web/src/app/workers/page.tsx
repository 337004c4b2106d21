import { WorkerPool } from '@/features/workers/WorkerPool';

export const metadata = { title: 'Workers · Keyflow' };

export default function WorkersPage() {
  return <WorkerPool />;
}
