DROP TABLE join_source_health;
DROP TABLE join_evidence;
