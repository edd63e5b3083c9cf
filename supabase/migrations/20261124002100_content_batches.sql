-- =====================================================================================
-- Message Batches for bulk pre-generation (half price): the content flow sends the Warm and
-- Cool steps due in 6–48 hours to Anthropic as one batch per tick and writes each message when
-- the batch has ended (shared/engines/step-content.ts, record/replay in content-batches.ts).
--
-- A step run remembers the batch its request went into, so the next ticks can collect it and the
-- live writer leaves it alone until it is due within two hours. content_batch_submitted_at is set
-- before the batch is sent (and kept when an item fails), so a step's request goes to a batch at
-- most once even when a tick dies mid-submit; the live writer then takes it.
--
-- Both columns are the service's bookkeeping, written only by the service (client users have no
-- UPDATE on them). They stay readable with the rest of the client's own step runs (RLS): a batch
-- id says nothing a client should not know, and a column list in place of the table-level SELECT
-- would break every `select *` the portal makes.
-- =====================================================================================

alter table public.step_runs
  add column content_batch_id text,
  add column content_batch_submitted_at timestamptz;

comment on column public.step_runs.content_batch_id is
  'The Anthropic message batch (msgbatch_…) whose result writes this step''s message; cleared when its item errored, expired or was canceled, so the live writer takes over. Kept once the message is written: which batch wrote it.';
comment on column public.step_runs.content_batch_submitted_at is
  'When the step''s request was handed to a message batch (set just before sending). Set with content_batch_id null: the batch failed for this step and it is never batched again; the live writer writes it.';

-- The collect phase: the distinct batches that still owe messages.
create index step_runs_content_batch_idx on public.step_runs (content_batch_id)
  where content_batch_id is not null and content_ready_at is null;
