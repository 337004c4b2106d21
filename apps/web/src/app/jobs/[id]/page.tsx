import { UserOperatorsGate } from '@/components/UserOperatorsGate';
import { JobView } from '@/features/job/JobView';

export const metadata = { title: 'Job · Keyflow' };

export default async function JobPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return (
    <UserOperatorsGate>
      <JobView id={id} />
    </UserOperatorsGate>
  );
}
