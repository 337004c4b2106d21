// Prints the demo pipeline's graph as JSON, for the launcher (which is plain Node).
import { demoPipeline } from '@keyflow/core';

process.stdout.write(JSON.stringify(demoPipeline));
