// The statistics flow (create a batch, start it, poll, results) with the typed TypeScript client a frontend team would generate: types from
// openapi-typescript (`api.d.ts`, generated from /api/schema/), requests through openapi-fetch.
// No `any`, no `as`: what compiles here is what the schema promises. tests/test_api_clients.py
// type-checks it with `tsc --strict --noEmit` and runs it against a live server.
import createClient from "openapi-fetch";
import type { components, paths } from "./api";

type Schemas = components["schemas"];

/** The example batch's create body, exactly. */
export const exampleBatch: Schemas["BatchCreateRequest"] = {
  batch_code: "BATCH_2025_001",
  description: "2025年第一批统计任务",
  data_source: "student_assessments",
  config: {
    include_dimensions: ["academic", "non_academic"],
    calculation_types: ["descriptive", "correlation"],
  },
};

// What the schema forbids does not compile: each line below is a type error. Should the schema
// lose a type (say a body becomes `unknown`), tsc reports the @ts-expect-error as unused.
// @ts-expect-error: an unknown data source is no DataSourceName
export const unknownSource: Schemas["BatchCreateRequest"] = { ...exampleBatch, data_source: "nowhere" };
// @ts-expect-error: a canary's seconds are a number
export const badCanary: Schemas["TaskCreateRequest"] = { task_type: "canary", params: { seconds: "30" } };
// @ts-expect-error: a canary takes no data source
export const strayParam: Schemas["TaskCreateRequest"] = { task_type: "canary", params: { data_source: "x" } };
// @ts-expect-error: the status filter takes TaskStatus values only
export const badFilter: paths["/api/v1/tasks"]["get"]["parameters"]["query"] = { status: ["done"] };

export interface FlowOutcome {
  taskId: string;
  stages: string[];
  records: number;
  canaryId: string;
  listed: string[];
  badRequestFields: string[];
  conflict: number;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`statistics flow: ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function statisticsFlow(baseUrl: string, token: string): Promise<FlowOutcome> {
  const client = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Token ${token}` },
  });

  const created = await client.POST("/api/v1/statistics/batches", { body: exampleBatch });
  check(created.data !== undefined, `createBatch: ${created.error?.message}`);
  const batch: Schemas["Batch"] = created.data.data;
  check(created.data.code === 201 && batch.batch_code === "BATCH_2025_001", "createBatch answers the batch");
  check(batch.task_count === 0 && batch.latest_task === null, "a new batch has no task");

  const path = { batch_code: batch.batch_code };
  const started = await client.POST("/api/v1/statistics/tasks/{batch_code}/start", { params: { path } });
  check(started.data !== undefined, `startBatchTask: ${started.error?.message}`);
  check(started.response.status === 202, "startBatchTask answers 202");
  const taskId: string = started.data.data.task_id;
  const task = { params: { path: { task_id: taskId } } };

  const deadline = Date.now() + 60_000;
  for (;;) {
    const report = await client.GET("/api/v1/statistics/tasks/{task_id}/status", task);
    check(report.data !== undefined, `getTaskStatus: ${report.error?.message}`);
    const status: Schemas["TaskStatus"] = report.data.data.status;
    if (status === "completed") {
      check(report.data.data.progress === 100 && report.data.data.error_message === null, "completed in full");
      break;
    }
    check(status === "pending" || status === "processing", `the statistics task became ${status}`);
    check(Date.now() < deadline, "the statistics task completes within 60 s");
    await sleep(100);
  }

  const progress = await client.GET("/api/v1/statistics/tasks/{task_id}/progress", task);
  check(progress.data !== undefined, `getTaskProgress: ${progress.error?.message}`);
  check(progress.data.data.overall_progress === 100, "overall progress 100");
  const stages = progress.data.data.stage_details.map((stage) => `${stage.stage}:${stage.status}:${stage.progress}`);

  const results = await client.GET("/api/v1/statistics/batches/{batch_code}/results", { params: { path } });
  check(results.data !== undefined, `getBatchResults: ${results.error?.message}`);
  const result: Schemas["StatisticsResult"] = results.data.data.result;
  check(results.data.data.task_id === taskId, "the results are the task's");
  check(result.correlation !== undefined && result.correlation.matrix.length === 10, "a 10×10 correlation");
  check(result.distribution === undefined, "only the calculations asked for");

  const canaryBody: Schemas["CanaryTaskCreate"] = { task_type: "canary", params: { seconds: 30, steps: 30 } };
  const canary = await client.POST("/api/v1/tasks", { body: canaryBody });
  check(canary.data !== undefined, `createTask: ${canary.error?.message}`);
  const canaryId: string = canary.data.data.task_id;
  check(canary.data.data.task_type === "canary" && canary.data.data.trigger === "api", "a canary from the API");
  const cancelled = await client.POST("/api/v1/tasks/{task_id}/cancel", {
    params: { path: { task_id: canaryId } },
  });
  check(cancelled.data !== undefined, `cancelTask: ${cancelled.error?.message}`);
  check(cancelled.data.data.status === "cancelled", "cancelTask answers the cancelled task");

  const listed = await client.GET("/api/v1/tasks", {
    params: { query: { status: ["completed", "cancelled"], page_size: 10 } },
  });
  check(listed.data !== undefined, `listTasks: ${listed.error?.message}`);
  const page: Schemas["TaskPage"] = listed.data.data;
  check(page.total === 2 && page.page === 1, `listTasks by two statuses finds both tasks, not ${page.total}`);

  // A 400: the typed body cannot name an unknown data source; a malformed batch code it can.
  const refused = await client.POST("/api/v1/statistics/batches", { body: { ...exampleBatch, batch_code: "BATCH 1/2" } });
  check(refused.error !== undefined, "createBatch refuses a malformed batch code");
  const error: Schemas["ErrorEnvelope"] = refused.error;
  check(refused.response.status === 400 && error.code === 400 && !error.success, "a 400 envelope");
  check(error.data === null && error.errors !== undefined, "a 400 names its fields");
  const badRequestFields = Object.keys(error.errors);

  // A 409: a completed task cannot be cancelled.
  const conflict = await client.POST("/api/v1/tasks/{task_id}/cancel", task);
  check(conflict.error !== undefined && conflict.error.code === 409, "cancelTask refuses a completed task");

  return {
    taskId,
    stages,
    records: result.records,
    canaryId,
    listed: page.results.map((row) => row.task_id),
    badRequestFields,
    conflict: conflict.response.status,
  };
}
