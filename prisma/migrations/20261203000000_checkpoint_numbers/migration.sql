-- A checkpoint's id is unique across jobs; users know a checkpoint by its job and its number within the job (the
-- Checkpoints tab's #N). Scaling events and restored jobs keep the number beside the id, as recoveries do, so that
-- it stays known after retention deletes the checkpoint.
ALTER TABLE "ScalingEvent" ADD COLUMN "checkpointNumber" INTEGER;
ALTER TABLE "Job" ADD COLUMN "restoredFromJobId" UUID;
ALTER TABLE "Job" ADD COLUMN "restoredFromNumber" INTEGER;

UPDATE "ScalingEvent" s SET "checkpointNumber" = c."number" FROM "Checkpoint" c WHERE c."id" = s."checkpointId";
UPDATE "Job" j SET "restoredFromJobId" = c."jobId", "restoredFromNumber" = c."number" FROM "Checkpoint" c WHERE c."id" = j."restoredFromId";
