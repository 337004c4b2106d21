import { PipelineBuilder } from '@/features/builder/PipelineBuilder';

export const metadata = { title: 'New pipeline · Keyflow' };

export default function NewPipelinePage() {
  return <PipelineBuilder />;
}
