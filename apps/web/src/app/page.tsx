import { JobList } from './JobList';

export default function HomePage() {
  return <JobList />;
}
