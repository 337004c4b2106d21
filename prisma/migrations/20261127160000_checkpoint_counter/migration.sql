-- AddColumn
ALTER TABLE "Job" ADD COLUMN "lastCheckpointNumber" INTEGER NOT NULL DEFAULT 0;

-- Backfill: a job's checkpoints so far.
UPDATE "Job" j SET "lastCheckpointNumber" = COALESCE((SELECT max(c."number") FROM "Checkpoint" c WHERE c."jobId" = j."id"), 0);
