-- =====================================================================================
-- Pipeline chaining: where each outbox row went, and a deduplication key for "kick" messages
-- (start the next flow) so many producers in a short time make one QStash message.
-- =====================================================================================

alter table public.outbox
  add column dedup_key text,
  add column destination text;
comment on column public.outbox.dedup_key is 'QStash deduplication id to use instead of outbox-<id> (e.g. flow.scoring:<minute>): many kicks, one delivery.';
comment on column public.outbox.destination is 'The function the publisher sent the row to; null once published means no subscriber for the topic.';
create index outbox_topic_unpublished_idx on public.outbox (topic) where published_at is null;
