import { UserOperatorsGate } from '@/components/UserOperatorsGate';
import { PipelineEditor } from './PipelineEditor';

export const metadata = { title: 'Pipeline · Keyflow' };

export default async function PipelinePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return (
    <UserOperatorsGate>
      <PipelineEditor id={id} />
    </UserOperatorsGate>
  );
}
