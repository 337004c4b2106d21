import { PipelineList } from './PipelineList';

export const metadata = { title: 'Pipelines · Keyflow' };

export default function PipelinesPage() {
  return <PipelineList />;
}
