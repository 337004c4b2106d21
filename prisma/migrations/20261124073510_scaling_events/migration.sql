-- CreateEnum
CREATE TYPE "ScalingStatus" AS ENUM ('QUEUED', 'WAITING_FOR_SLOTS', 'ALIGNING', 'COMPLETED', 'ROLLED_BACK', 'FAILED');

-- CreateTable
CREATE TABLE "ScalingEvent" (
    "id" SERIAL NOT NULL,
    "jobId" UUID NOT NULL,
    "vertexId" TEXT NOT NULL,
    "chainVertices" TEXT[],
    "fromParallelism" INTEGER NOT NULL,
    "toParallelism" INTEGER NOT NULL,
    "status" "ScalingStatus" NOT NULL DEFAULT 'QUEUED',
    "requestedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "subtasksStartedAt" TIMESTAMP(3),
    "alignedAt" TIMESTAMP(3),
    "snapshottedAt" TIMESTAMP(3),
    "restoredAt" TIMESTAMP(3),
    "runningAt" TIMESTAMP(3),
    "checkpointId" INTEGER,
    "keyGroupsMoved" INTEGER NOT NULL DEFAULT 0,
    "bytesMoved" BIGINT NOT NULL DEFAULT 0,
    "pauseMs" INTEGER,
    "reason" TEXT,

    CONSTRAINT "ScalingEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ScalingEvent_jobId_id_idx" ON "ScalingEvent"("jobId", "id");

-- AddForeignKey
ALTER TABLE "ScalingEvent" ADD CONSTRAINT "ScalingEvent_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;
