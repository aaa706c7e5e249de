DROP TABLE audit_log;
DROP TABLE bonus_invites;
DROP TABLE reset_joins;
DROP TABLE resets;
DROP INDEX joins_by_time;
