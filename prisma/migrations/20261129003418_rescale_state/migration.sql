-- AlterEnum
ALTER TYPE "CheckpointKind" ADD VALUE 'MANUAL' AFTER 'PERIODIC';

-- AlterEnum
ALTER TYPE "CheckpointStatus" ADD VALUE 'DISCARDED';

-- AlterEnum
ALTER TYPE "ScalingStatus" ADD VALUE 'INTERRUPTED';

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "desiredParallelism" JSONB;

-- AlterTable
ALTER TABLE "ScalingEvent" ADD COLUMN     "resumesId" INTEGER;
