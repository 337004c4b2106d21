-- CreateEnum
CREATE TYPE "RecoveryStatus" AS ENUM ('RESTORING', 'RUNNING', 'FAILED', 'SUPERSEDED');

-- CreateTable
CREATE TABLE "Recovery" (
    "id" SERIAL NOT NULL,
    "jobId" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "cause" TEXT NOT NULL,
    "failedAt" TIMESTAMP(3),
    "detectedAt" TIMESTAMP(3) NOT NULL,
    "checkpointId" INTEGER,
    "checkpointNumber" INTEGER,
    "runningAt" TIMESTAMP(3),
    "restoreMs" INTEGER,
    "keyGroupsRestored" INTEGER NOT NULL DEFAULT 0,
    "bytesRestored" BIGINT NOT NULL DEFAULT 0,
    "status" "RecoveryStatus" NOT NULL DEFAULT 'RESTORING',
    "reason" TEXT,

    CONSTRAINT "Recovery_pkey" PRIMARY KEY ("id")
);

-- AddColumn
ALTER TABLE "Job" ADD COLUMN "tolerableCheckpointFailures" INTEGER NOT NULL DEFAULT 3;

-- CreateIndex
CREATE INDEX "Recovery_jobId_id_idx" ON "Recovery"("jobId", "id");

-- AddForeignKey
ALTER TABLE "Recovery" ADD CONSTRAINT "Recovery_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;
