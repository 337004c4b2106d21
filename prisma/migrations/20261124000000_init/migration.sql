-- CreateEnum
CREATE TYPE "JobState" AS ENUM ('CREATED', 'SCHEDULING', 'RUNNING', 'RESCALING', 'RECOVERING', 'STOPPING', 'STOPPED', 'CANCELED', 'FAILED', 'FINISHED');

-- CreateEnum
CREATE TYPE "CheckpointKind" AS ENUM ('PERIODIC', 'SAVEPOINT', 'RESCALE');

-- CreateEnum
CREATE TYPE "CheckpointStatus" AS ENUM ('PENDING', 'COMPLETED', 'FAILED');

-- CreateEnum
CREATE TYPE "StateScope" AS ENUM ('KEYED', 'OPERATOR');

-- CreateTable
CREATE TABLE "Pipeline" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Pipeline_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PipelineVersion" (
    "id" UUID NOT NULL,
    "pipelineId" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "graph" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PipelineVersion_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Job" (
    "id" UUID NOT NULL,
    "pipelineId" UUID NOT NULL,
    "pipelineVersionId" UUID NOT NULL,
    "state" "JobState" NOT NULL DEFAULT 'CREATED',
    "attempt" INTEGER NOT NULL DEFAULT 1,
    "plan" JSONB NOT NULL,
    "checkpointIntervalMs" INTEGER NOT NULL DEFAULT 10000,
    "checkpointTimeoutMs" INTEGER NOT NULL DEFAULT 60000,
    "restoredFromId" INTEGER,
    "failureReason" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "endedAt" TIMESTAMP(3),

    CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobEvent" (
    "id" SERIAL NOT NULL,
    "jobId" UUID NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "attempt" INTEGER NOT NULL,
    "fromState" "JobState",
    "toState" "JobState" NOT NULL,
    "reason" TEXT,

    CONSTRAINT "JobEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Checkpoint" (
    "id" SERIAL NOT NULL,
    "jobId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "kind" "CheckpointKind" NOT NULL DEFAULT 'PERIODIC',
    "status" "CheckpointStatus" NOT NULL DEFAULT 'PENDING',
    "totalSubtasks" INTEGER NOT NULL,
    "triggeredAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMP(3),
    "durationMs" INTEGER,
    "bytes" BIGINT NOT NULL DEFAULT 0,
    "alignmentMs" INTEGER,
    "failureReason" TEXT,

    CONSTRAINT "Checkpoint_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CheckpointAck" (
    "checkpointId" INTEGER NOT NULL,
    "vertexId" TEXT NOT NULL,
    "subtaskIndex" INTEGER NOT NULL,
    "ackedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "alignmentMs" INTEGER NOT NULL,
    "syncMs" INTEGER NOT NULL,
    "asyncMs" INTEGER NOT NULL,
    "bytes" BIGINT NOT NULL,

    CONSTRAINT "CheckpointAck_pkey" PRIMARY KEY ("checkpointId","vertexId","subtaskIndex")
);

-- CreateTable
CREATE TABLE "StateChunk" (
    "checkpointId" INTEGER NOT NULL,
    "vertexId" TEXT NOT NULL,
    "scope" "StateScope" NOT NULL,
    "part" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "StateChunk_pkey" PRIMARY KEY ("checkpointId","vertexId","scope","part")
);

-- CreateIndex
CREATE UNIQUE INDEX "Pipeline_name_key" ON "Pipeline"("name");

-- CreateIndex
CREATE UNIQUE INDEX "PipelineVersion_pipelineId_version_key" ON "PipelineVersion"("pipelineId", "version");

-- CreateIndex
CREATE INDEX "Job_state_idx" ON "Job"("state");

-- CreateIndex
CREATE INDEX "JobEvent_jobId_at_idx" ON "JobEvent"("jobId", "at");

-- CreateIndex
CREATE INDEX "Checkpoint_jobId_status_idx" ON "Checkpoint"("jobId", "status");

-- CreateIndex
CREATE UNIQUE INDEX "Checkpoint_jobId_number_key" ON "Checkpoint"("jobId", "number");

-- AddForeignKey
ALTER TABLE "PipelineVersion" ADD CONSTRAINT "PipelineVersion_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_pipelineId_fkey" FOREIGN KEY ("pipelineId") REFERENCES "Pipeline"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_pipelineVersionId_fkey" FOREIGN KEY ("pipelineVersionId") REFERENCES "PipelineVersion"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobEvent" ADD CONSTRAINT "JobEvent_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Checkpoint" ADD CONSTRAINT "Checkpoint_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CheckpointAck" ADD CONSTRAINT "CheckpointAck_checkpointId_fkey" FOREIGN KEY ("checkpointId") REFERENCES "Checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StateChunk" ADD CONSTRAINT "StateChunk_checkpointId_fkey" FOREIGN KEY ("checkpointId") REFERENCES "Checkpoint"("id") ON DELETE CASCADE ON UPDATE CASCADE;
