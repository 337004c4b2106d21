import { UserOperatorsGate } from '@/components/UserOperatorsGate';
import { PipelineBuilder } from '@/features/builder/PipelineBuilder';

export const metadata = { title: 'New pipeline · Keyflow' };

export default async function NewPipelinePage({ searchParams }: { searchParams: Promise<{ template?: string | string[] }> }) {
  const { template } = await searchParams;
  const templateId = typeof template === 'string' ? template : undefined;
  // A new builder for each template: its name and canvas start afresh.
  return (
    <UserOperatorsGate>
      <PipelineBuilder key={templateId ?? ''} templateId={templateId} />
    </UserOperatorsGate>
  );
}
