DROP TRIGGER inviter_counts_notify_truncate ON inviter_counts;
DROP TRIGGER inviter_counts_notify_delete ON inviter_counts;
DROP TRIGGER inviter_counts_notify_update ON inviter_counts;
DROP TRIGGER inviter_counts_notify_insert ON inviter_counts;
DROP FUNCTION invitrack_notify_inviter_counts_truncate();
DROP FUNCTION invitrack_notify_inviter_counts();
