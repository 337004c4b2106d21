/**
 * How the page names a checkpoint: by its number within the job, as the Checkpoints tab lists it (#N). The id is
 * unique across jobs and means nothing to a user; it is shown only for rows written before numbers were kept.
 */
export function checkpointName(c: { checkpointId: number | null; checkpointNumber: number | null }): string | undefined {
  if (c.checkpointNumber !== null) return `checkpoint #${c.checkpointNumber}`;
  if (c.checkpointId !== null) return `checkpoint id ${c.checkpointId}`;
  return undefined;
}
